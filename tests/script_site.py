"""A loopback site that scripts build: what an HTTP engine sees as an empty shell.

``/`` and every ``/item/<n>`` are the same shell (a ``<div id="root">`` and
``/app.js``), as a single-page app's server answers every route. The script reads
``location.pathname``: on ``/`` it fetches ``/api/pages.json`` and renders a link
per page (``history.pushState`` URLs, no fragments); on ``/item/<n>`` it fetches
``/api/item/<n>.json`` and sets the title and the text. ``/server/<n>`` pages are
rendered by the server (their text in the HTML), linked from the index too.

Named failure modes: ``canary`` (a URL every item page's script and markup try to
reach), ``/never-settles`` (a page whose script polls ``/api/poll`` forever),
``/slow-item/<n>`` (text from ``/api/slow``, half a second late), ``/late`` (an
element added 1.5 s after load), ``/grows`` (a small document a script makes
large), ``/with-image``, ``/odd`` (a lone surrogate in the DOM, a pop-up).
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from tests.server import LoopbackServer

APP_JS = """
const root = document.getElementById("root");
async function show() {
  root.textContent = "";
  document.body.dataset.rendered = String(Math.random());  // no two renders alike
  const path = location.pathname;
  if (path === "/") {
    const pages = await (await fetch("/api/pages.json")).json();
    document.title = "Index";
    for (const page of pages) {
      const a = document.createElement("a");
      a.href = page.path;
      a.textContent = page.title;
      a.addEventListener("click", (event) => {
        event.preventDefault();
        history.pushState({}, "", page.path);
        show();
      });
      root.appendChild(a);
    }
    return;
  }
  const number = path.split("/").pop();
  const item = await (await fetch(`/api/item/${number}.json`)).json();
  document.title = item.title;
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = item.text;
  root.appendChild(text);
  const back = document.createElement("a");
  back.href = "/";
  back.textContent = "all items";
  root.appendChild(back);
  if (item.canary) {
    fetch(item.canary + "/fetch").catch(() => {});
    navigator.sendBeacon(item.canary + "/beacon", "x");
    try { new WebSocket(item.canary.replace("http", "ws") + "/socket"); } catch (e) {}
    const script = document.createElement("script");
    script.src = item.canary + "/script.js";
    document.head.appendChild(script);
    const frame = document.createElement("iframe");
    frame.src = item.canary + "/frame";
    document.body.appendChild(frame);
  }
}
show();
"""

NEVER_SETTLES = """<!doctype html><html><head><title>busy</title></head><body>
<div id="root"></div><script>
setInterval(() => fetch("/api/poll?" + Math.random()), 100);
</script></body></html>"""

WITH_IMAGE = """<!doctype html><html><head><title>image</title></head><body>
<p>A picture:</p><img src="/pixel.png" alt="pixel"></body></html>"""

LATE = """<!doctype html><html><head><title>late</title></head><body><div id="root"></div>
<script>setTimeout(() => { const p = document.createElement("p"); p.id = "late";
document.body.appendChild(p); }, 1500);</script></body></html>"""

SLOW_ITEM = """<!doctype html><html><head><title>slow</title></head><body><div id="root"></div>
<script>fetch("/api/slow").then((r) => r.text()).then((t) => {
document.getElementById("root").textContent = t; });</script></body></html>"""

GROWS = """<!doctype html><html><head><title>grows</title></head><body><script>
document.body.appendChild(document.createTextNode("grown ".repeat(40000)));
</script></body></html>"""

ODD = """<!doctype html><html><head><title>odd</title></head><body><script>
document.body.appendChild(document.createTextNode("half a pair: \\uD800."));
window.open("/opened-by-script");
</script></body></html>"""

STATIC = {"/never-settles": NEVER_SETTLES, "/with-image": WITH_IMAGE, "/late": LATE,
          "/grows": GROWS, "/odd": ODD}  # fmt: skip


def shell(title: str = "Loading") -> str:
    return (f'<!doctype html><html><head><title>{title}</title><script src="/app.js" defer>'
            '</script></head><body><div id="root"></div></body></html>')  # fmt: skip


class ScriptSite(LoopbackServer):
    def __init__(self, items: int = 6, server_pages: int = 2, canary: str | None = None) -> None:
        super().__init__()
        self.items, self.server_pages, self.canary = items, server_pages, canary
        self.headers_seen: dict[str, dict[str, str]] = {}  # the last request's, by path
        self._at_once: dict[str, list[int]] = {}  # path: [in flight, most at once]

    def most_at_once(self, path: str) -> int:
        """The most requests for ``path`` the server was answering at one time."""
        return self._at_once.get(path, [0, 0])[1]

    def item_title(self, number: int) -> str:
        return f"Item {number}, rendered by script"

    def server_title(self, number: int) -> str:
        return f"Server page {number}"

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.headers_seen[path] = dict(request.headers)
        if path == "/robots.txt":
            return web.Response(text="User-agent: *\nAllow: /\n")
        if path == "/app.js":
            return web.Response(text=APP_JS, content_type="application/javascript")
        if path == "/" or (path.startswith("/item/") and path[6:].isdigit()):
            return web.Response(text=shell(), content_type="text/html")
        if path == "/api/pages.json":
            pages = [{"path": f"/item/{n}", "title": f"item {n}"} for n in range(1, self.items + 1)]
            pages += [{"path": f"/server/{n}", "title": f"server {n}"}
                      for n in range(1, self.server_pages + 1)]  # fmt: skip
            return web.json_response(pages)
        if path.startswith("/api/item/") and path.endswith(".json"):
            number = int(path[10:-5])
            return web.json_response({
                "title": self.item_title(number), "text": f"The text of item {number}.",
                "canary": self.canary,
            })  # fmt: skip
        if path.startswith("/server/") and path[8:].isdigit():
            number = int(path[8:])
            body = "<p>" + "This page carries its own text, as servers render it. " * 8 + "</p>"
            return web.Response(text=(
                f"<!doctype html><html><head><title>{self.server_title(number)}</title></head>"
                f'<body><h1>Server page {number}</h1>{body}<a href="/">home</a></body></html>'
            ), content_type="text/html")  # fmt: skip
        if path in STATIC:
            return web.Response(text=STATIC[path], content_type="text/html")
        if path.startswith("/slow-item/"):
            return web.Response(text=SLOW_ITEM, content_type="text/html")
        if path == "/api/slow":  # half a second, counting how many wait at once
            counts = self._at_once.setdefault(path, [0, 0])
            counts[0] += 1
            counts[1] = max(counts)
            try:
                await asyncio.sleep(0.5)
            finally:
                counts[0] -= 1
            return web.Response(text="a slow item")
        if path == "/api/poll":
            return web.json_response({"ok": True})
        if path == "/pixel.png":
            return web.Response(body=b"\x89PNG\r\n\x1a\n", content_type="image/png")
        raise web.HTTPNotFound()


class Canary(LoopbackServer):
    """Counts every request, whatever it asks: a page's script must never reach it."""

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=json.dumps({"reached": True}), content_type="application/json")
