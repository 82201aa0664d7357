"""A small shop on 127.0.0.1 for the demo: a home page, categories and products.

``python scripts/demo_site.py --port 8000`` serves it until interrupted (``--port 0``:
any free port; the first line printed names the address). ``scripts/demo.py`` binds
the socket itself (``bind``) and serves the shop from a thread (``serving``), so the
crawl it starts can only reach this shop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import socket
import sys
import threading
from collections.abc import Iterator

from aiohttp import web

CATEGORIES = {"books": 6, "music": 5, "games": 4}


def layout(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><nav><a href='/'>Home</a></nav><h1>{title}</h1>{body}</body></html>"
    )


async def home(request: web.Request) -> web.Response:
    links = "".join(f"<li><a href='/{name}/'>{name.title()}</a></li>" for name in CATEGORIES)
    return web.Response(text=layout("Demo shop", f"<ul>{links}</ul>"), content_type="text/html")


async def category(request: web.Request) -> web.Response:
    name = request.match_info["category"]
    if name not in CATEGORIES:
        raise web.HTTPNotFound()
    items = "".join(
        f"<li><a href='/{name}/{i}.html'>{name.title()} item {i}</a></li>"
        for i in range(1, CATEGORIES[name] + 1)
    )
    return web.Response(text=layout(name.title(), f"<ul>{items}</ul>"), content_type="text/html")


async def product(request: web.Request) -> web.Response:
    name, number = request.match_info["category"], int(request.match_info["number"])
    if name not in CATEGORIES or not 1 <= number <= CATEGORIES[name]:
        raise web.HTTPNotFound()
    body = (
        f"<div class='product'><span class='name'>{name.title()} item {number}</span>"
        f"<span class='sku'>{name[:2].upper()}-{number:04d}</span>"
        f"<span class='price'>{9.99 + number:.2f}</span></div>"
        f"<a href='/{name}/'>Back to {name}</a>"
    )
    return web.Response(
        text=layout(f"{name.title()} item {number}", body), content_type="text/html"
    )


async def robots(request: web.Request) -> web.Response:
    return web.Response(text="User-agent: *\nDisallow: /private/\n")


def app() -> web.Application:
    application = web.Application()
    application.router.add_get("/", home)
    application.router.add_get("/robots.txt", robots)
    application.router.add_get("/{category}/", category)
    application.router.add_get(r"/{category}/{number:\d+}.html", product)
    return application


class PortTaken(Exception):
    """Another socket listens on the port asked for."""

    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} is taken")
        self.port = port


def bind(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:``port`` (0: a free port the system picks).

    ``SO_REUSEADDR`` lets a rerun reuse the port while old connections linger in
    TIME_WAIT; on Linux it never lets two sockets listen on one port, so a port in
    use raises ``PortTaken``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortTaken(port) from exc
        raise
    return sock


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def serving(sock: socket.socket) -> Iterator[None]:
    """Serve the shop on ``sock`` from a thread with its own event loop, until the
    block exits (however it exits); the socket is closed then."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="demo-site", daemon=True)
    runner = web.AppRunner(app(), access_log=None, shutdown_timeout=5)

    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(runner.setup(), loop).result()
        try:
            site = web.SockSite(runner, sock)
            asyncio.run_coroutine_threadsafe(site.start(), loop).result()
            yield
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    args = parser.parse_args()
    try:
        sock = bind(args.port)
    except PortTaken as exc:
        sys.exit(f"demo site: {exc}")
    print(f"Demo shop on http://127.0.0.1:{port_of(sock)}/ (Ctrl-C stops it)", flush=True)
    web.run_app(app(), sock=sock, print=None)


if __name__ == "__main__":
    main()
