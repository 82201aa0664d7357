"""An HTML page as an lxml tree, built once for the site's fields and the link walk.

libxml2 (through lxml) builds the tree of a shop page in a fraction of a millisecond;
one parser per thread and encoding is reused, since building one costs more than a
parse. The tree's elements have ``lxml.html``'s classes, chosen by a table in C.
"""

from __future__ import annotations

import threading
from typing import Any

import lxml.html
from lxml import etree

__all__ = ["parse_html"]

_DETECT_BYTES = 64 * 1024

_local = threading.local()


def _parser(encoding: str | None) -> Any:
    # One parser per thread and encoding: lxml parsers are not meant to be
    # shared between threads, and building one per page costs more than parsing.
    parsers: dict[str | None, Any] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(encoding)
    if parser is None:
        # huge_tree lifts libxml2's limits from 256 to 2048 levels of nesting
        # and allows text nodes over 10 MB.
        parser = parsers[encoding] = lxml.html.HTMLParser(huge_tree=True, encoding=encoding)
        parser.set_element_class_lookup(_HTML_CLASSES)
    return parser


def _html_classes() -> Any:
    """The element classes ``lxml.html`` gives each node, chosen in C.

    ``lxml.html``'s own lookup is a Python method called for every element a walk
    or an XPath touches (about 40 µs of a shop page's 70 µs link walk); this one
    gives the same classes (``HtmlElement``, ``FormElement`` for ``<form>`` and the
    like, ``HtmlComment``, ...) by a table."""
    html = lxml.html
    fallback = etree.ElementDefaultClassLookup(
        element=html.HtmlElement,
        comment=html.HtmlComment,
        pi=html.HtmlProcessingInstruction,
        entity=html.HtmlEntity,
    )
    lookup = etree.ElementNamespaceClassLookup(fallback)
    lookup.get_namespace(None).update(html.HtmlElementClassLookup._default_element_classes)
    return lookup


_HTML_CLASSES = _html_classes()


def _looks_utf8(body: bytes) -> bool:
    sample = body[:_DETECT_BYTES]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte sequence cut by the sample's end is still UTF-8.
        return exc.start >= len(sample) - 3 and len(body) > len(sample)
    return True


def parse_html(markup: bytes | str) -> tuple[Any, bool]:
    """Parse a page into an ``lxml.html`` tree; return ``(root, complete)``.

    ``root`` is ``None`` when there is no document (an empty body, only a
    comment). ``complete`` is false when libxml2 gave up part-way, which in
    practice means nesting deeper than 2048 levels: the tree then holds only
    what came before, and callers that must see everything rescan the text.

    ``str`` is parsed as the text it is (a ``<meta charset>`` or XML
    declaration in it is ignored). ``bytes`` that are valid UTF-8 are read as
    UTF-8; other bytes are left to libxml2, which honours a BOM and a
    ``<meta charset>`` and otherwise assumes Latin-1. When the HTTP header
    names the charset, decode first (``Page.text`` does) and pass the text.

    Content after ``</html>`` is in the body, as in browsers (libxml2 2.14
    leaves it outside the tree: see ``_adopt_after_html``).
    """
    encoding: str | None
    if isinstance(markup, str):
        # lxml refuses str with an XML encoding declaration; UTF-8 bytes with
        # an explicit parser encoding sidestep that and lone surrogates alike.
        data, encoding = markup.encode("utf-8", "replace"), "utf-8"
    else:
        data, encoding = markup, ("utf-8" if _looks_utf8(markup) else None)
    if not data or data.isspace():
        return None, True
    parser = _parser(encoding)
    try:
        root = etree.fromstring(data, parser)
    except (etree.LxmlError, ValueError):
        return None, True
    if root is not None and root.getnext() is not None:  # rare: only what follows </html>
        _adopt_after_html(root)
    return root, not parser.error_log.filter_from_fatals()


def _adopt_after_html(root: Any) -> None:
    """Move what came after ``</html>`` into the body, where browsers put it.

    libxml2 2.14 closes the document at ``</html>`` and starts a new ``<html>``
    beside it for whatever follows, an element the tree's root never reaches.
    HTML reads that content as if ``</html>`` were not there: into the body,
    with the attributes of a repeated ``<html>`` or ``<body>`` tag added to the
    first one's, its ``<head>`` tag ignored. Comments stay after the document
    element, where HTML puts them too.
    """
    body = root.find("body")
    if body is None:  # a <head> alone, or a frameset
        body = etree.SubElement(root, "body")
    sibling = root.getnext()
    while sibling is not None:
        following = sibling.getnext()
        if sibling.tag == "html":
            _add_missing_attributes(root, sibling)
            body.append(sibling)  # from beside the document element into its body
            for part in sibling.findall("*"):
                if part.tag == "body":
                    _add_missing_attributes(body, part)
                if part.tag in ("head", "body"):
                    part.drop_tag()  # the children and text stay
            sibling.drop_tag()
        sibling = following


def _add_missing_attributes(target: Any, source: Any) -> None:
    for name, value in source.items():
        if name not in target.attrib:
            target.set(name, value)
