"""A small shop on 127.0.0.1 for the demo: a home page, categories and products.

``python scripts/demo_site.py --port 8000`` serves it until interrupted;
``--wait`` returns as soon as a server on that port answers (at most 10 s).
"""

from __future__ import annotations

import argparse
import socket
import time

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


def wait_for(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"demo site did not start on 127.0.0.1:{port}") from None
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--wait", action="store_true", help="wait until the site answers")
    args = parser.parse_args()
    if args.wait:
        wait_for(args.port)
    else:
        web.run_app(app(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
