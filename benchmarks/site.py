"""A deterministic generated shop for benchmarks, served on 127.0.0.1.

    python benchmarks/site.py --pages 20000 [--port 0] [--stats FILE] [--seed 7]

prints ``listening on http://127.0.0.1:PORT`` once it accepts connections and
serves, until SIGTERM or SIGINT:

- ``/``: the home page, linking to ``/p/0.html``;
- ``/p/{i}.html`` for ``i < pages``: about 10 KB of HTML with one product block
  (``<div class="product">`` with ``name``, ``sku`` and ``price``, what
  ``sites/shop.py`` parses) and about 16 links. Page ``i`` links to its children
  ``2i+1`` and ``2i+2``, so every page is reachable from ``/``; the other links
  are random pages written relative, root-relative and absolute, many with a
  ``#fragment``;
- ``/search?q={i}&page=1`` for ``i % 4 == 0``, linked from page ``i`` in both
  parameter orders (``?q=..&page=1`` and ``?page=1&q=..``): one page, two spellings;
- ``/private/{i}.html``: linked from every 25th page, disallowed by robots.txt;
- off-site links to ``http://localhost:PORT/...`` (another host name) and
  ``https://elsewhere.invalid/``: a crawl must follow neither;
- ``/robots.txt`` (``Disallow: /private/``, a ``Sitemap:`` line) and
  ``/sitemap.xml`` (every 50th page: already linked, so nothing is orphaned);
- ``/__stats``: request counts as JSON, by host and first path segment. Nothing
  links to it, and it is not counted itself.

Bodies are generated on demand from a seeded RNG per page (tens of microseconds)
and the last few thousand are cached, so the server starts at once for any
``--pages`` and is never the bottleneck of a crawl. ``expected_urls(pages, port)``
gives the canonical URL of every page a correct crawl fetches and parses.
``ShopSite(...).write_static(folder)`` writes the same pages as files, for nginx
to serve (``compare.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["ShopSite", "expected_paths", "expected_urls", "main"]

HOST = "127.0.0.1"
SEARCH_EVERY = 4  # page i % 4 == 0 links /search?q=i&page=1 in two parameter orders
PRIVATE_EVERY = 25  # page i % 25 == 0 links /private/i.html (robots: disallowed)
SITEMAP_EVERY = 50  # /sitemap.xml lists every 50th page
CACHE_PAGES = 4096
PRIVATE_BODY = b"<html><body>secret</body></html>"

_WORD_TEXT = (
    "alpine anchor amber basalt beacon birch cedar chrome cobalt copper coral crystal "
    "delta ember falcon fern flint garnet glacier granite harbor hazel indigo iris ivory "
    "jade juniper kelp lagoon lantern linen lotus maple marble meadow mesa nickel oak "
    "onyx opal orchid pebble pine prairie quartz raven reef ridge river saffron sage "
    "sierra slate spruce summit tidal timber topaz tundra umber valley velvet willow zinc"
)
_WORDS = tuple(_WORD_TEXT.split())
_NOUN_TEXT = (
    "backpack blender bottle candle chair clock desk headphones jacket kettle lamp mug "
    "notebook pan pillow plant pot rug scarf shelf speaker stool tent towel umbrella watch"
)
_NOUNS = tuple(_NOUN_TEXT.split())
_CATEGORIES = ("home", "kitchen", "outdoor", "office", "garden", "travel", "audio", "apparel")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randrange(9, 18))]
    return " ".join(words).capitalize() + "."


def _paragraph_pool(seed: int, size: int = 256) -> tuple[str, ...]:
    rng = random.Random(seed)
    return tuple(" ".join(_sentence(rng) for _ in range(rng.randrange(3, 6))) for _ in range(size))


def expected_paths(pages: int) -> list[str]:
    """Path and query of every page a correct crawl fetches and parses."""
    paths = ["/"]
    paths += [f"/p/{i}.html" for i in range(pages)]
    paths += [f"/search?q={i}&page=1" for i in range(0, pages, SEARCH_EVERY)]
    return paths


def expected_urls(pages: int, port: int) -> set[str]:
    """Canonical URLs (``crawler.urls.canonicalize``) of every page a crawl must visit."""
    from crawler.urls import canonicalize

    base = f"http://{HOST}:{port}"
    return {canonicalize(base + path) for path in expected_paths(pages)}


class ShopSite:
    """The page generator and the aiohttp handler; ``counts`` records every request."""

    def __init__(self, pages: int, *, port: int = 0, seed: int = 7) -> None:
        if pages < 1:
            raise ValueError("pages must be at least 1")
        self.pages = pages
        self.seed = seed
        self.port = port  # set before serving: absolute and off-site links name it
        self.paragraphs = _paragraph_pool(seed)
        self.counts: Counter[str] = Counter()
        self.page_body = lru_cache(maxsize=CACHE_PAGES)(self._page_body)
        self.search_body = lru_cache(maxsize=CACHE_PAGES)(self._search_body)

    # content ------------------------------------------------------------------------------

    def _rng(self, i: int, salt: int = 0) -> random.Random:
        return random.Random((self.seed * 1_000_003 + i) * 7 + salt)

    def links_of(self, i: int) -> list[tuple[str, str]]:
        """(href, anchor text) for page ``i``: about 16, in every form a crawler meets."""
        n, rng = self.pages, self._rng(i, 1)
        port = self.port
        other = [rng.randrange(n) for _ in range(8)]
        links = [("/", "Home"), ("/p/0.html#top", "All products")]
        for child, style in zip((2 * i + 1, 2 * i + 2), (0, 1), strict=True):
            if child < n:
                href = f"{child}.html" if style == 0 else f"/p/{child}.html"
                links.append((href, f"Related item {child}"))
        links += [
            (f"./{other[0]}.html#reviews", "Reviews"),
            (f"../p/{other[1]}.html", "Also bought"),
            (f"/p/{other[2]}.html#specs", "Specifications"),
            (f"http://{HOST}:{port}/p/{other[3]}.html", "Popular"),
            (f"http://{HOST}:{port}/p/{other[4]}.html#section-{i % 7}", "Featured"),
            (f"//{HOST}:{port}/p/{other[5]}.html", "Deal of the day"),
            (f"{other[6]}.html#top", "Recently viewed"),
            (f"http://localhost:{port}/p/{other[7]}.html", "Mirror"),  # another host: off-site
            ("https://elsewhere.invalid/", "Partner shop"),  # off-site, never resolved
            ("mailto:help@shop.invalid", "Contact"),
        ]
        if i % SEARCH_EVERY == 0:
            links += [
                (f"/search?q={i}&page=1", "Search similar"),
                (f"/search?page=1&q={i}#results", "More like this"),
            ]
        if i % PRIVATE_EVERY == 0:
            links.append((f"/private/{i}.html", "Staff notes"))
        return links

    def product(self, i: int) -> tuple[str, str, str]:
        rng = self._rng(i, 2)
        name = f"{rng.choice(_WORDS).capitalize()} {rng.choice(_NOUNS)} {i}"
        price = f"${rng.randrange(2, 900)}.{rng.randrange(100):02d}"
        return name, f"SKU-{i:06d}", price

    def render(self, title: str, i: int, links: list[tuple[str, str]], salt: int) -> bytes:
        rng = self._rng(i, salt)
        name, sku, price = self.product(i)
        category = _CATEGORIES[i % len(_CATEGORIES)]
        nav = "".join(
            f'<li class="nav-item"><a class="nav-link" href="/p/{k}.html">{c.title()}</a></li>'
            for k, c in enumerate(_CATEGORIES)
        )
        anchors = "".join(
            f'<li class="link"><a href="{href}" title="{text}">{text}</a></li>'
            for href, text in links
        )
        description = "".join(f"<p>{rng.choice(self.paragraphs)}</p>" for _ in range(12))
        specs = "".join(
            f"<tr><th>{rng.choice(_WORDS).title()}</th><td>{rng.choice(_WORDS)} "
            f"{rng.randrange(1, 500)} mm</td></tr>"
            for _ in range(10)
        )
        reviews = "".join(
            f'<article class="review"><h3>{rng.choice(_WORDS).title()} says</h3>'
            f'<p class="stars">{rng.randrange(1, 6)} of 5</p>'
            f"<p>{rng.choice(self.paragraphs)}</p></article>"
            for _ in range(6)
        )
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{title} | Benchmark Shop</title>"
            f'<meta name="description" content="{name} in {category}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="stylesheet" href="/static/shop.css"></head>\n<body>'
            f'<header><a class="logo" href="/">Benchmark Shop</a><nav><ul>{nav}</ul></nav>'
            "</header>\n<main>"
            f'<ol class="breadcrumb"><li><a href="/">Home</a></li><li>{category}</li>'
            f"<li>{name}</li></ol><h1>{title}</h1>\n"
            f'<div class="product"><span class="name">{name}</span>'
            f'<span class="sku">{sku}</span><span class="price">{price}</span></div>\n'
            f'<section class="description">{description}</section>\n'
            f'<table class="specs">{specs}</table>\n'
            f'<section class="reviews">{reviews}</section>\n'
            f'<aside><ul class="links">{anchors}</ul></aside></main>\n'
            "<footer><p>&copy; Benchmark Shop. Generated for crawler benchmarks.</p></footer>"
            "</body></html>\n"
        )
        return page.encode()

    def _page_body(self, i: int) -> bytes:
        return self.render(f"Product {i}", i, self.links_of(i), 3)

    def _search_body(self, i: int) -> bytes:
        links = [("/", "Home"), (f"/p/{i}.html", "Back to the product")]
        links += [(f"/p/{(i * 31 + k) % self.pages}.html", f"Result {k}") for k in range(12)]
        return self.render(f"Search results for {i}", i, links, 4)

    def home_body(self) -> bytes:
        links = [("/p/0.html", "All products"), ("/p/0.html#top", "Top")]
        return self.render("Home", 0, links, 5)

    def robots(self) -> bytes:
        return (
            f"User-agent: *\nDisallow: /private/\nSitemap: http://{HOST}:{self.port}/sitemap.xml\n"
        ).encode()

    def sitemap(self) -> bytes:
        locs = "".join(
            f"<url><loc>http://{HOST}:{self.port}/p/{i}.html</loc></url>"
            for i in range(0, self.pages, SITEMAP_EVERY)
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
        ).encode()

    def write_static(self, root: Path) -> int:
        """Every page this site serves, as files under ROOT, for a static server (nginx)
        to serve the same bytes; returns how many files were written.

        ``/`` is ``index.html``; ``/search?q=I&page=1`` is ``search/I.html``: the server
        maps the query to the file, so both parameter orders get the one page.
        Set ``port`` first: absolute and off-site links name it.
        """
        files: dict[str, bytes] = {
            "index.html": self.home_body(),
            "robots.txt": self.robots(),
            "sitemap.xml": self.sitemap(),
        }
        for folder in ("p", "search", "private"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        for name, body in files.items():
            (root / name).write_bytes(body)
        written = len(files)
        for i in range(self.pages):
            # The uncached renderers: each page is written once, and the LRU stays empty.
            (root / "p" / f"{i}.html").write_bytes(self._page_body(i))
            written += 1
            if i % SEARCH_EVERY == 0:
                (root / "search" / f"{i}.html").write_bytes(self._search_body(i))
                written += 1
            if i % PRIVATE_EVERY == 0:
                (root / "private" / f"{i}.html").write_bytes(PRIVATE_BODY)
                written += 1
        return written

    # serving ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "port": self.port,
            "requests": dict(sorted(self.counts.items())),
        }

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        if path == "/__stats":
            return web.json_response(self.stats())
        host = request.host.rsplit(":", 1)[0] if request.host else ""
        prefix = "/" + path.split("/", 2)[1] if path.count("/") > 1 else path
        self.counts[f"{host} {prefix}"] += 1
        html = "text/html"
        if path == "/":
            return web.Response(body=self.home_body(), content_type=html, charset="utf-8")
        if path.startswith("/p/") and path.endswith(".html"):
            number = path[3:-5]
            if number.isdigit() and int(number) < self.pages:
                body = self.page_body(int(number))
                return web.Response(body=body, content_type=html, charset="utf-8")
        if path == "/search":
            q, page = request.query.get("q", ""), request.query.get("page")
            if q.isdigit() and int(q) < self.pages and page == "1":
                body = self.search_body(int(q))
                return web.Response(body=body, content_type=html, charset="utf-8")
        if path.startswith("/private/"):
            return web.Response(body=PRIVATE_BODY, content_type=html)
        if path == "/robots.txt":
            return web.Response(body=self.robots(), content_type="text/plain")
        if path == "/sitemap.xml":
            return web.Response(body=self.sitemap(), content_type="application/xml")
        return web.Response(status=404, text="not found")


async def serve(site: ShopSite, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = web.Server(site.handle, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    site.port = sock.getsockname()[1]
    await web.SockSite(runner, sock, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening on http://{HOST}:{site.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=2000, help="product pages (default 2000)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stats", type=Path, help="write request counts here on exit")
    args = parser.parse_args(argv)
    site = ShopSite(args.pages, port=args.port, seed=args.seed)
    try:
        asyncio.run(serve(site, args.port))
    finally:
        if args.stats is not None:
            args.stats.write_text(json.dumps(site.stats(), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
