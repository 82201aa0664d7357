"""The two limits a Python crawler on one core is measured against (``compare.py``).

    python benchmarks/limits.py URL_FILE OUT_FILE [--parse] [--concurrency 64]

Fetches every URL of URL_FILE (one per line: the pages a correct crawl finds, so
no frontier, no robots, no dedup) with one ``aiohttp.ClientSession``, C requests in
flight, and writes one line per URL to OUT_FILE: ``status<TAB>url``.

- without ``--parse`` (``aiohttp-bare``): body read and dropped. What the HTTP client
  and the event loop cost: the HTTP limit.
- with ``--parse`` (``aiohttp-lxml``): each body through ``lxml.html``, every
  ``<a href>`` made absolute without its fragment, and the product's name, sku and
  price by the same class XPath as ``sites/shop.py``; the line also gets the number
  of distinct links and the three fields. The least per-page work a crawler that
  extracts links and fields does: the parsing limit.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import aiohttp


class Parser:
    """Links and the three item fields of a page, through lxml only."""

    def __init__(self) -> None:
        from lxml import etree, html

        from sites.shop import class_xpath  # the crawl's own expressions, never a copy

        self.fromstring = html.document_fromstring
        self.hrefs = etree.XPath("//a/@href")
        self.products = class_xpath("//", "product")
        self.fields = [class_xpath("./descendant::*/", name) for name in ("name", "sku", "price")]

    def __call__(self, url: str, body: bytes) -> str:
        tree = self.fromstring(body)
        links = {urldefrag(urljoin(url, href.strip()))[0] for href in self.hrefs(tree)}
        values = ["", "", ""]
        for block in self.products(tree)[:1]:
            for index, field in enumerate(self.fields):
                found = field(block)
                if found:
                    values[index] = " ".join(found[0].text_content().split())
        return "\t".join((str(len(links)), *values))


async def fetch_all(urls: list[str], concurrency: int, parse: Parser | None) -> list[str]:
    """C workers share one iterator over the URLs: C in flight, no task per URL."""
    lines: list[str] = []
    pending: Iterator[str] = iter(urls)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for url in pending:
                async with session.get(url) as response:
                    body = await response.read()
                    line = f"{response.status}\t{url}"
                    if parse is not None and response.status == 200:
                        line += "\t" + parse(url, body)
                    lines.append(line)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url_file", type=Path)
    parser.add_argument("out_file", type=Path)
    parser.add_argument("--parse", action="store_true", help="links and fields through lxml")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    args = parser.parse_args(argv)
    urls = [line.strip() for line in args.url_file.read_text(encoding="utf-8").splitlines()]
    urls = [url for url in urls if url]
    lines = asyncio.run(fetch_all(urls, args.concurrency, Parser() if args.parse else None))
    args.out_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return 0 if all(line.startswith("200\t") for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
