"""A site parser for any site: one summary record per page, and every link.

Used when a crawl names no specific site (``site = "generic"``). It reads the
lxml tree (``page.tree``), never the soup, because it runs on every page of
crawls of any size; link extraction shares that tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar

from lxml import etree

from crawler.parse import Item, Link, Page, Site

__all__ = ["SITE", "GenericSite"]


def _collapse(text: str | None) -> str | None:
    """Whitespace runs as one space, trimmed; ``None`` for nothing left."""
    if not text:
        return None
    return " ".join(text.split()) or None


def _has_token(value: str | None, token: str) -> bool:
    return value is not None and token in value.lower().split()


# Every text node under an element; the body's that do not render (a script's or a
# style's content: libxml2 keeps each as text under it) are taken out by count below,
# which costs less than asking XPath to test each node's parent.
_TEXT = etree.XPath(".//text()", smart_strings=False)


def _visible_text_length(root: Any) -> int:
    """Length of the body's text with whitespace collapsed, scripts and styles left out.

    Text nodes are joined with a space: in minified HTML, ``<li>a</li><li>b</li>``
    reads as two words, which is how it renders. So no word spans two nodes, and the
    words of scripts and styles can be counted apart and taken away.
    """
    body = root.find("body")
    if body is None:
        return 0
    words, chars = _words(_TEXT(body))
    hidden = [text for element in body.iter("script", "style")
              for text in (element.text, *(child.tail for child in element)) if text]  # fmt: skip
    if hidden:
        hidden_words, hidden_chars = _words(hidden)
        words, chars = words - hidden_words, chars - hidden_chars
    return chars + max(words - 1, 0)


def _words(texts: list[str]) -> tuple[int, int]:
    """How many words ``texts`` hold, and how many characters those words have."""
    words = " ".join(texts).split()
    return len(words), len("".join(words))


def _jsonld(root: Any) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for script in root.iter("script"):
        kind = (script.get("type") or "").partition(";")[0].strip().lower()
        if kind != "application/ld+json" or not script.text:
            continue
        try:
            data = json.loads(script.text)
        except (ValueError, RecursionError):
            # Invalid JSON (or nested past the recursion limit) is the page's
            # problem; the rest of the page is still worth its record.
            continue
        # One script may carry an array of objects: list them one by one.
        values = data if isinstance(data, list) else [data]
        objects.extend(value for value in values if isinstance(value, dict))
    return objects


def _head_data(root: Any) -> tuple[str | None, dict[str, str]]:
    """``(meta description, {og:property: content})``; the first of a repeated property wins."""
    description: str | None = None
    opengraph: dict[str, str] = {}
    for meta in root.iter("meta"):
        content = meta.get("content")
        if content is None:
            continue
        name = (meta.get("name") or "").strip().lower()
        if name == "description":
            if description is None:
                description = _collapse(content)
            continue
        # OpenGraph uses property=; some pages write name="og:..." instead.
        prop = (meta.get("property") or name).strip().lower()
        if prop.startswith("og:") and len(prop) > 3 and prop not in opengraph:
            opengraph[prop] = content.strip()
    return description, opengraph


def _canonical(page: Page, root: Any) -> str | None:
    for link in root.iter("link"):
        if _has_token(link.get("rel"), "canonical"):
            return page.urljoin(link.get("href"))
    return None


def _first_text(root: Any, tag: str) -> str | None:
    element = next(root.iter(tag), None)
    return None if element is None else _collapse(element.text_content())


class GenericSite(Site):
    """One ``Item`` per page, then every link of the page.

    The item's fields, always all present (``None`` when the page has no value):
    ``url``, ``status``, ``depth``, ``referrer``, ``fetched_at`` (left ``None``:
    the crawler stamps it when it writes the item, since parsing may run later
    and elsewhere), ``title``, ``description`` (meta description), ``canonical``
    (``<link rel=canonical>``, absolute), ``lang`` (``<html lang>``), ``h1`` (the
    first one's text), ``text_length`` (visible body text, whitespace collapsed,
    scripts and styles excluded), ``links`` (how many ``page.links()`` found) and
    ``structured``: ``{"jsonld": [...], "opengraph": {...}}`` with empty keys
    left out, ``{}`` when the page has neither. Texts are whitespace-collapsed.
    """

    name: ClassVar[str] = "generic"

    def parse(self, page: Page) -> Iterable[Item | Link]:
        root = page.tree
        links = page.links()
        description, opengraph = _head_data(root)
        structured: dict[str, Any] = {}
        jsonld = _jsonld(root)
        if jsonld:
            structured["jsonld"] = jsonld
        if opengraph:
            structured["opengraph"] = opengraph
        yield Item(
            url=page.url,
            status=page.status,
            depth=page.depth,
            referrer=page.referrer,
            fetched_at=None,
            title=_first_text(root, "title"),
            description=description,
            canonical=_canonical(page, root),
            lang=_collapse(root.get("lang")),
            h1=_first_text(root, "h1"),
            text_length=_visible_text_length(root),
            links=len(links),
            structured=structured,
        )
        yield from links


SITE = GenericSite
