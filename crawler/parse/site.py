"""What a site parser sees and returns: ``Page`` in, ``Item`` and ``Link`` out.

A ``Site`` turns one fetched page into records and links to follow. Sites live
in the ``sites/`` package (or any importable module) and are named in the
config, so nothing in ``crawler/`` imports them: ``load_site`` (``loader.py``)
does, from the config string.

``Page`` does no work until asked: the text is decoded on first use, the lxml
tree built on first use of ``tree`` or ``links()``, the BeautifulSoup only when
a site touches ``soup``. A crawl that only follows links never pays for a soup.
``css`` and ``xpath`` select through parsel, as in Scrapy, on that same tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import lxml.html
from parsel import Selector, SelectorList
from yarl import URL

from crawler.models import Headers, HeadersLike, Response, make_headers
from crawler.models.encoding import decode_html
from crawler.parse.links import Link, extract_links, links_from_tree, resolve_url
from crawler.parse.tree import parse_html

if TYPE_CHECKING:
    from bs4 import BeautifulSoup

__all__ = ["ExtractFailure", "Item", "Link", "Page", "Site"]


class Item(dict[str, Any]):
    """One record a site yields: ``yield Item(title=..., price=...)``.

    A plain dict underneath, so sinks serialize it as one; the type only tells
    items from links in what ``Site.parse`` yields.
    """

    __slots__ = ()


_EMPTY_DOCUMENT = "<html><head></head><body></body></html>"


class Page:
    """A fetched page as a site parser sees it.

    ``url`` is the final URL (after redirects); ``depth`` counts links followed
    from a seed (0 for a seed); ``referrer`` is the URL of the page that linked
    here; ``data`` is what the ``Link`` that led here carried (``Link(url,
    data={...})``), empty for a seed. Everything derived from the body is
    computed on first access and cached; a ``Page`` is meant for one thread at
    a time.
    """

    __slots__ = (
        "_encoding",
        "_links",
        "_selector",
        "_soup",
        "_text",
        "_tree",
        "_tree_complete",
        "body",
        "data",
        "depth",
        "headers",
        "referrer",
        "status",
        "url",
    )

    def __init__(
        self,
        url: str,
        status: int,
        headers: HeadersLike | None,
        body: bytes,
        *,
        depth: int = 0,
        referrer: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.status = status
        self.headers: Headers = make_headers(headers)
        self.body = body
        self.depth = depth
        self.referrer = referrer
        self.data: Mapping[str, Any] = MappingProxyType(dict(data) if data else {})
        self._encoding: str | None = None
        self._text: str | None = None
        self._tree: Any = None
        self._tree_complete = True
        self._soup: BeautifulSoup | None = None
        self._selector: Selector | None = None
        self._links: list[Link] | None = None

    @classmethod
    def from_response(
        cls,
        response: Response,
        *,
        depth: int = 0,
        referrer: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Page:
        """The page of a response; ``url`` is the response's final URL."""
        return cls(
            response.url,
            response.status,
            response.headers,
            response.body,
            depth=depth,
            referrer=referrer,
            data=data,
        )

    def __repr__(self) -> str:
        return f"<Page {self.status} {self.url}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Only the inputs travel to another process: caches (an lxml tree, a
        # soup) do not pickle, and are cheaper rebuilt than shipped.
        headers = tuple(self.headers.items())
        return (
            _restore_page,
            (self.url, self.status, headers, self.body, self.depth, self.referrer, dict(self.data)),
        )

    def _decode(self) -> str:
        if self._text is None:
            self._encoding, self._text = decode_html(self.body, self.headers.get("content-type"))
        return self._text

    @property
    def text(self) -> str:
        """The body decoded: BOM, then header charset, then ``<meta charset>``, then detection."""
        return self._decode()

    @property
    def encoding(self) -> str:
        """The encoding ``text`` was decoded with."""
        self._decode()
        assert self._encoding is not None
        return self._encoding

    @property
    def tree(self) -> Any:
        """The document as an ``lxml.html`` element, for fast XPath.

        Never ``None``: an empty or unparsable body gives an empty
        ``<html><head/><body/></html>``. A document nested deeper than libxml2
        allows (2048 levels) is cut there; ``links()`` still sees all of it.
        """
        if self._tree is None:
            root, self._tree_complete = parse_html(self._decode())
            self._tree = (
                root if root is not None else lxml.html.document_fromstring(_EMPTY_DOCUMENT)
            )
        return self._tree

    @property
    def soup(self) -> BeautifulSoup:
        """A BeautifulSoup of ``text`` with the lxml parser, built on first access.

        Convenient and slow (milliseconds per page); prefer ``tree`` in sites
        that run on every page of a large crawl.
        """
        if self._soup is None:
            # Imported here so processes that never build a soup never load bs4.
            from bs4 import BeautifulSoup

            self._soup = BeautifulSoup(self._decode(), "lxml")
        return self._soup

    @property
    def selector(self) -> Selector:
        """A parsel ``Selector`` over ``tree`` (no second parse), built on first access."""
        if self._selector is None:
            self._selector = Selector(root=self.tree, type="html", base_url=self.url)
        return self._selector

    def css(self, query: str) -> SelectorList[Selector]:
        """The elements a CSS selector picks, as parsel selects them in Scrapy:
        ``page.css("h1::text").get()``, ``page.css("a::attr(href)").getall()``,
        ``page.css(".price").xpath("string()").get()`` for all of an element's text."""
        return self.selector.css(query)

    def xpath(self, query: str, **variables: Any) -> SelectorList[Selector]:
        """The nodes an XPath picks: ``page.xpath("//h1/text()").get()``; ``$name``
        in the query takes ``name=`` from ``variables``."""
        return self.selector.xpath(query, **variables)

    @property
    def base_url(self) -> str:
        """The URL relative links resolve against: ``<base href>`` or the page URL."""
        base = self.tree.find(".//base[@href]")
        if base is not None:
            resolved = resolve_url(base.get("href"), _page_base(self.url))
            if resolved is not None:
                return resolved
        return self.url

    def urljoin(self, href: str | None) -> str | None:
        """``href`` resolved as ``links()`` resolves links; ``None`` if it is not an http(s) URL."""
        return resolve_url(href, _page_base(self.base_url))

    def links(self) -> list[Link]:
        """Every link of the page, in document order (rules: ``crawler.parse.links``). Cached.

        Shares the lxml tree with ``tree``, so a site using both parses once.
        """
        if self._links is None:
            tree = self.tree
            if self._tree_complete:
                self._links = links_from_tree(tree, self.url)
            else:
                self._links = extract_links(self._decode(), self.url)
        return self._links


def _page_base(url: str) -> URL | None:
    try:
        return URL(url).with_fragment(None)
    except (ValueError, TypeError):
        return None


def _restore_page(
    url: str,
    status: int,
    headers: tuple[tuple[str, str], ...],
    body: bytes,
    depth: int,
    referrer: str | None,
    data: dict[str, Any],
) -> Page:
    return Page(url, status, headers, body, depth=depth, referrer=referrer, data=data)


@dataclass(frozen=True, slots=True)
class ExtractFailure:
    """What a site yields for an item it could not make (an extraction rule's required
    field found nothing, a value was not of its type): an ``extract`` error record."""

    message: str


class Site:
    """A parser for one kind of site: subclass it and override ``parse``.

    Subclasses set ``name`` and keep no mutable state: the crawl may run
    ``parse`` in worker threads or, pickling the site, in other processes.
    """

    name: ClassVar[str] = "base"

    def parse(self, page: Page) -> Iterable[Item | Link | ExtractFailure]:
        """Yield the records (``Item``) and the links to follow (``Link``) of one page.

        The contract: pure. No I/O (no fetching, no files, no sleeping), no
        state carried from one page to the next; everything comes from ``page``.
        The crawl schedules each ``Link`` through scope, dedup and robots, and
        writes each ``Item`` to the sinks. Exceptions become a ``ParseError``
        for that page; the crawl goes on.

        This default follows every link and yields no items.
        """
        yield from page.links()
