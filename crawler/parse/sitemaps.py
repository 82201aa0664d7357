"""Read sitemaps (urlsets and indexes, plain or gzipped) into URLs, never all in memory."""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, field

from lxml import etree

__all__ = ["Sitemap", "parse_sitemap"]

MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the protocol's own limits, uncompressed
MAX_SITEMAP_URLS = 50_000


@dataclass(frozen=True, slots=True)
class Sitemap:
    pages: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)  # from a sitemap index


def _gunzip(body: bytes) -> bytes:
    """Decompress with a size cap: a sitemap.xml.gz can be a bomb too."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = decompressor.decompress(body, MAX_SITEMAP_BYTES)
    if decompressor.unconsumed_tail:
        raise ValueError(f"sitemap larger than {MAX_SITEMAP_BYTES} bytes")
    return data


def parse_sitemap(body: bytes) -> Sitemap:
    """Page and child-sitemap URLs of a sitemap; empty for anything unreadable."""
    try:
        if body[:2] == b"\x1f\x8b":
            body = _gunzip(body)
        sitemap = Sitemap()
        parser = etree.iterparse(
            io.BytesIO(body), events=("end",), resolve_entities=False, no_network=True,
            huge_tree=False, recover=True,
        )  # fmt: skip
        for _, element in parser:
            if etree.QName(element).localname != "loc" or not element.text:
                continue
            parent = element.getparent()
            kind = etree.QName(parent).localname if parent is not None else ""
            target = sitemap.sitemaps if kind == "sitemap" else sitemap.pages
            target.append(element.text.strip())
            element.clear()
            if len(sitemap.pages) + len(sitemap.sitemaps) >= MAX_SITEMAP_URLS:
                break  # the rest is beyond what the protocol allows one file
        return sitemap
    except (ValueError, etree.LxmlError, zlib.error):
        return Sitemap()
