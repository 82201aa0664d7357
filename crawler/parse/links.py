"""Find the links on an HTML page, fast.

A crawl parses every page it fetches, so link extraction is the hot loop:
libxml2 (through lxml) builds the tree of a 10 KB page in about 50 µs, where a
BeautifulSoup takes milliseconds, and the walk below visits only the six tags
that can link. Sites that want a soup still get one from ``Page.soup``; the
crawl itself never needs it.

Rules, in the order they apply:

- sources: ``<a href>``, ``<area href>``, ``<frame src>``, ``<iframe src>`` and
  the URL of ``<meta http-equiv="refresh" content="5; url=...">``;
- relative URLs resolve against the first ``<base href>`` (itself resolved
  against the page URL), else the page URL, wherever in the document the
  ``<base>`` appears, as browsers do;
- surrounding whitespace is stripped, tabs and newlines inside removed, the
  fragment dropped; what remains must be an http(s) URL with a host that
  parses, anything else (``javascript:``, ``mailto:``, ``tel:``, ``data:``,
  empty, same-document ``#top``, a bad port) is skipped;
- ``rel`` containing the token ``nofollow`` (case-insensitive) marks that link
  ``nofollow``; ``<meta name="robots" content="nofollow">`` (or ``none``) marks
  all of them;
- each URL is listed once, at its first position; it is ``nofollow`` only when
  every link to it on the page is.

Nothing here raises on the content of a page: broken markup is repaired by the
parser, a document nested deeper than libxml2 allows (it stops at 2048 levels)
is scanned again with the standard library's tokenizer, and an empty body has
no links.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Protocol

from yarl import URL

from crawler.parse.tree import parse_html
from crawler.urls import is_plain_url

__all__ = ["Link", "extract_links", "links_from_tree", "resolve_url"]


@dataclass(frozen=True, slots=True)
class Link:
    """An absolute http(s) URL found on a page, without fragment.

    ``nofollow`` records the author's hint (``rel="nofollow"`` or meta robots);
    whether a crawl still follows such links is the crawl's policy, not the parser's.
    ``data`` travels with the link to the page it leads to (``page.data`` there),
    through the frontier, resumes and Redis, so it must be what JSON can hold:
    ``Link(url, data={"category": "books"})``. A page reached by several links
    keeps the data of the first one the crawl found.
    """

    url: str
    nofollow: bool = False
    data: Mapping[str, Any] | None = field(default=None, compare=False)


# Elements whose attributes can carry a link, plus the two that change how
# links are read (<base> and <meta>).
_TAGS = ("a", "area", "frame", "iframe", "base", "meta")
_URL_ATTR = {"a": "href", "area": "href", "frame": "src", "iframe": "src"}
_SCHEMES = frozenset({"http", "https"})
_DROPPED_PREFIXES = ("javascript:", "mailto:", "tel:", "data:", "#")
# WHATWG: tabs and newlines anywhere in a URL are removed before parsing it.
_STRIP_INSIDE = str.maketrans("", "", "\t\n\r")
# Code points WHATWG forbids in a host; yarl accepts some of them.
_BAD_HOST = re.compile(r"[\x00-\x20\"<>\\^`{|}]")
# <meta http-equiv=refresh content="5; url='...'">, per the HTML "shared
# declarative refresh steps": a time, a separator, an optional "url=", the URL.
_REFRESH = re.compile(r"\s*[\d.]+(?:\s*[;,]|\s|$)\s*(?:url\s*=\s*)?(.*)", re.IGNORECASE | re.DOTALL)
_TOKENS = re.compile(r"[\s,]+")


def resolve_url(href: str | None, base: URL | str | None) -> str | None:
    """``href`` made absolute against ``base``, without fragment, or ``None``.

    ``None`` when the result is not an http(s) URL with a valid host and port,
    or when ``href`` is empty, a same-document ``#fragment``, or does not parse.
    """
    if not href:
        return None
    href = href.strip()
    if "\t" in href or "\n" in href or "\r" in href:
        href = href.translate(_STRIP_INSIDE)
    if not href or href[:11].lower().startswith(_DROPPED_PREFIXES):
        return None
    # The fragment starts at the first "#"; dropping it before parsing is cheaper.
    href = href.partition("#")[0]
    if "\\" in href:
        # Browsers read "\" as "/" in http(s) URLs ("\\evil.example" is a host).
        href = href.replace("\\", "/")
    try:
        url = URL(href)
        if not url.scheme:
            if base is None:
                return None
            url = (base if isinstance(base, URL) else URL(base)).join(url)
        if url.scheme not in _SCHEMES:
            return None
        host = url.raw_host
        if not host or _BAD_HOST.search(host):
            return None
        if "xn--" in host and not url.host:  # an A-label that is not punycode raises
            return None
        return str(url)
    except (ValueError, TypeError, UnicodeError):
        return None


def _refresh_target(content: str | None) -> str | None:
    match = _REFRESH.match(content or "")
    if match is None:
        return None
    target = match.group(1).strip()
    if target[:1] in ("'", '"'):
        target = target[1:].partition(target[0])[0]
    return target or None


def _has_token(value: str | None, token: str) -> bool:
    return bool(value) and token in _TOKENS.split(str(value).lower())


class _Element(Protocol):
    """An element as the link walk sees it: an lxml element, or a tag the tokenizer read."""

    @property
    def tag(self) -> Any: ...  # str for elements; comments and the like never come here

    def get(self, key: str) -> str | None: ...


def _collect(elements: Iterable[_Element], page_url: str) -> list[Link]:
    raw: list[tuple[str, bool]] = []
    base_href: str | None = None
    page_nofollow = False
    url_attributes = _URL_ATTR
    for element in elements:
        tag = element.tag
        attr = url_attributes.get(tag)
        if attr is not None:
            value = element.get(attr)
            if value:
                rel = element.get("rel") if tag == "a" or tag == "area" else None
                raw.append((value, rel is not None and _has_token(rel, "nofollow")))
        elif tag == "meta":
            name = (element.get("name") or "").strip().lower()
            if name == "robots":
                content = element.get("content")
                page_nofollow |= _has_token(content, "nofollow") or _has_token(content, "none")
            elif (element.get("http-equiv") or "").strip().lower() == "refresh":
                target = _refresh_target(element.get("content"))
                if target:
                    raw.append((target, False))
        elif tag == "base" and base_href is None:
            base_href = element.get("href")

    try:
        # yarl keeps the base's fragment when joining "?query"; drop it first.
        base: URL | None = URL(page_url).with_fragment(None)
    except (ValueError, TypeError):
        base = None
    if base_href is not None:
        resolved_base = resolve_url(base_href, base)
        if resolved_base is not None:
            base = URL(resolved_base)

    # url -> nofollow; a dict keeps first-seen order.
    found: dict[str, bool] = {}
    resolve = _Resolver(base)
    for href, nofollow in raw:
        url = resolve(href)
        if url is not None:
            found[url] = found.get(url, True) and (nofollow or page_nofollow)
    return [_link(url) if not nofollow else Link(url, True) for url, nofollow in found.items()]


_LINKS_MAX = 8192
_links: dict[str, Link] = {}


def _link(url: str) -> Link:
    """``Link(url)``, made once: menus and footers link the same pages on every page,
    and a frozen dataclass costs more to make than to look up (it is immutable, so
    pages may share one)."""
    link = _links.get(url)
    if link is None:
        if len(_links) >= _LINKS_MAX:
            _links.clear()
        link = _links[url] = Link(url)
    return link


# A root-relative href that joins as it is written: segments of unreserved characters
# (none "." or ".."), a plain query, any fragment. The product pages a shop links once
# each (related items) are mostly these; yarl takes 20 times longer to say the same.
_PLAIN_PATH = re.compile(r"(?:/[\w~-][\w.~-]*)+/?(?:\?[\w.~=&-]+)?(?:#.*)?", re.ASCII)
# A path-relative href that joins as written onto the base's folder: "./" and "../"
# steps, then such segments ("12.html", "../p/12.html#reviews").
_PLAIN_RELATIVE = re.compile(
    r"((?:\.\.?/)*)([\w~-][\w.~-]*(?:/[\w~-][\w.~-]*)*/?(?:\?[\w.~=&-]+)?)(?:#.*)?", re.ASCII
)

# Answers remembered per thread or process, forgotten all at once: at most
# _CONTEXTS_MAX memos of _RESOLVED_MAX answers each (about 5 MB at worst).
_RESOLVED_MAX = 4096
_CONTEXTS_MAX = 8
# Answers by what they depend on (an origin, a scheme, or nothing: "" for absolute
# hrefs), then by href.
_resolved: dict[str, dict[str, str | None]] = {}
# Whether a base's folder joins plain relative hrefs as written, by folder.
_folders: dict[str, bool] = {}


def _memo(context: str) -> dict[str, str | None]:
    memo = _resolved.get(context)
    if memo is None:
        if len(_resolved) >= _CONTEXTS_MAX:  # many origins: a crawl of many sites
            _resolved.clear()
        memo = _resolved[context] = {}
    return memo


class _Resolver:
    """``resolve_url`` against one base, remembering answers across pages.

    A shop's menus and footers name the same few dozen URLs on every page, as
    absolute or root-relative links whose answer depends on the base's scheme and
    authority alone; those are looked up, not parsed again. Root-relative links of
    plain segments are joined as written (``_PLAIN_PATH``), and so are plain absolute
    ones (``is_plain_url``) and plain links relative to the page's folder
    (``_PLAIN_RELATIVE``). Every other href is resolved as it comes. Threads may share
    the memo: an answer depends only on its key, so a race stores the same value twice."""

    __slots__ = ("_absolute", "_base", "_folder", "_origin", "_plain", "_rooted", "_scheme",
                 "_schemed", "_text")  # fmt: skip

    def __init__(self, base: URL | None) -> None:
        self._base = base
        self._text = text = "" if base is None else str(base)
        self._folder: str | None = None  # the base up to its path's last "/", once asked
        authority_end = text.find("/", text.find("//") + 2)
        self._origin = text if authority_end < 0 else text[:authority_end]
        self._scheme = "" if base is None else base.scheme
        self._absolute = _memo("")
        self._rooted = _memo(self._origin)
        self._schemed = _memo(self._scheme + ":")
        self._plain = False
        self._plain = base is not None and self("/") == self._origin + "/"

    def __call__(self, href: str) -> str | None:
        if href[:1] == "/":
            if href[1:2] == "/":
                memo = self._schemed
                if not (href[2:3].isalnum() or href[2:3] == "["):  # no host: not base-free
                    return resolve_url(href, self._base)
            else:
                memo = self._rooted
        else:
            memo = self._absolute
            lowered = href[:6].lower()
            if not (lowered[:5] == "http:" or lowered == "https:"):
                # relative to the page's path or query: seldom shared
                return self._relative_join(href) or resolve_url(href, self._base)
        if href in memo:
            return memo[href]
        if "\\" in href:  # read as "/": "/\\x" is "//x", relative to the base's path
            return resolve_url(href, self._base)
        url = self._plain_join(href) or resolve_url(href, self._base)
        if len(memo) >= _RESOLVED_MAX:
            memo.clear()
        memo[href] = url
        return url

    def _plain_join(self, href: str) -> str | None:
        """``href`` as written, without its fragment, when it is a plain absolute or
        scheme-relative URL, or a plain path on the base's own origin."""
        if href[:1] != "/":  # absolute
            url = href.partition("#")[0]
        elif href[1:2] == "/":  # scheme-relative: "//host:port/..."
            url = f"{self._scheme}:{href.partition('#')[0]}"
        else:
            if not self._plain or _PLAIN_PATH.fullmatch(href) is None:
                return None
            return self._origin + href.partition("#")[0]
        # yarl refuses a host of "xn--" labels that are not punycode.
        return url if is_plain_url(url) and "xn--" not in url else None

    def _relative_join(self, href: str) -> str | None:
        """``href`` joined onto the base's folder as written, when it is plain
        (``_PLAIN_RELATIVE``) and the folder joins so (asked of yarl once a folder)."""
        match = _PLAIN_RELATIVE.fullmatch(href)
        if match is None or self._base is None:
            return None
        folder = self._folder
        if folder is None:
            folder = self._folder = _folder(self._text, self._origin, self._base)
        if not folder:
            return None
        steps, rest = match.groups()
        for _ in range(steps.count("../")):  # each goes up a folder, never past the root
            up = folder.rfind("/", len(self._origin), len(folder) - 1)
            if up < 0:
                break
            folder = folder[: up + 1]
        return folder + rest


def _folder(text: str, origin: str, base: URL) -> str:
    """``text`` (the base, written) up to its path's last "/", or "" when yarl does not
    join plain relative hrefs onto it as written."""
    query = text.find("?")
    path = text[len(origin) : len(text) if query < 0 else query]
    folder = origin + path[: path.rfind("/") + 1] if path.startswith("/") else ""
    known = _folders.get(folder)
    if known is None:
        if len(_folders) >= _RESOLVED_MAX:
            _folders.clear()
        known = _folders[folder] = bool(folder) and resolve_url("x", base) == folder + "x"
    return folder if known else ""


def links_from_tree(root: Any, base_url: str) -> list[Link]:
    """The links of an already parsed tree (see ``parse_html``); ``[]`` for ``None``."""
    if root is None:
        return []
    return _collect(root.iter(*_TAGS), base_url)


class _TagScanner(HTMLParser):
    """The fallback for documents libxml2 gives up on: a tokenizer keeps no
    stack of open elements, so nesting depth costs it nothing."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[_ScannedTag] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _TAGS:
            # The first of a repeated attribute wins, as in browsers.
            values: dict[str, str | None] = {}
            for name, value in attrs:
                values.setdefault(name, value)
            self.tags.append(_ScannedTag(tag, values))


class _ScannedTag:
    """A start tag the tokenizer read, as ``_collect`` reads elements."""

    __slots__ = ("_attributes", "tag")

    def __init__(self, tag: str, attributes: dict[str, str | None]) -> None:
        self.tag, self._attributes = tag, attributes

    def get(self, key: str) -> str | None:
        return self._attributes.get(key)


def _scan_links(text: str, base_url: str) -> list[Link]:
    """Links found by tokenizing ``text``: slower than the tree, but unbounded depth."""
    scanner = _TagScanner()
    # html.parser is lenient, but a few malformed declarations still raise in
    # some Python versions; the tags seen up to that point are kept.
    with contextlib.suppress(ValueError, AssertionError):
        scanner.feed(text)
        scanner.close()
    return _collect(scanner.tags, base_url)


def _as_text(body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    from crawler.models.encoding import decode_html

    return decode_html(body, None)[1]


def extract_links(body: bytes | str, base_url: str) -> list[Link]:
    """Every link of the page at ``base_url``, in document order (rules: module docstring).

    Never raises on page content. Pass ``str`` when the encoding is known from
    elsewhere (an HTTP header); ``bytes`` are read as ``parse_html`` describes.
    """
    root, complete = parse_html(body)
    if not complete:
        return _scan_links(_as_text(body), base_url)
    return links_from_tree(root, base_url)
