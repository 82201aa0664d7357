"""One hostile loopback server for the hostile-input suites: everything a crawler
meets in the wild that can crash it, hang it, blow up its memory or trick it.

``HostileServer`` is a ``LoopbackServer`` (so its HTTP modes, /drip, /reset,
/huge, /retry-after, /flaky..., are all here) listening on several loopback
ports, plus one raw-socket port for answers no HTTP library would send:

- the main port: the HTTP modes, a robots.txt that disallows ``/forbidden/``,
  bombs, retry modes and the crawl-level pages (charsets, nested HTML, binary
  types, traps);
- ``other``: the same modes on another origin (cross-origin redirects);
- ``escape``: a page of links that try to walk out of the output folder, and a
  200 page for any path;
- one port per robots.txt behaviour (``ROBOTS``): 5xx, 404, 403, 429,
  redirecting, 600 KiB, hanging, a brief outage, a redirect loop;
- ``raw_url(...)``: garbage instead of HTTP, broken chunking, Content-Length
  longer than the body, a reset mid-body, a header of a megabyte.

Every behaviour is bounded in time (``HANG``) and size. Hits are counted per
path, as ``path`` on the main port and ``"<port name>:<path>"`` elsewhere
(``"raw:/garbage"``), before any answer is sent, so a test reading them after
its fetch returned sees every request that reached the server.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.server import PAGE, LoopbackServer, deflated_zeros, gzip_member

BOMB_SIZE = 1 << 30  # decompressed size of every bomb: 1 GiB of zeros
ROBOTS_RULES = "User-agent: *\nDisallow: /forbidden/\n"
ROBOTS_FLAKY_FAILURES = 3  # the brief outage: this many 503s, then the rules
BIG_ROBOTS_SIZE = 600 * 1024

# port name -> what its /robots.txt does
ROBOTS = {
    "r500": "500 Internal Server Error",
    "r404": "404 Not Found",
    "r403": "403 Forbidden",
    "r429": "429 Too Many Requests, Retry-After: 1",
    "rredirect": "301 then 302, then the rules",
    "rloop": "a redirect loop",
    "rbig": "600 KiB: the rules, then comments",
    "rhang": "no answer until HANG",
    "rflaky": f"503 for {ROBOTS_FLAKY_FAILURES} fetches after arm_flaky_robots(), else the rules",
}
PORTS = ("main", "other", "escape", *ROBOTS)
BIG_PATHS = ("/bomb/", "/huge", "/fill")

TIMEOUT = 1.0  # every fetch of the hostile suites; hostile answers must not stretch it
MARGIN = 1.5  # what a loaded CI machine may add to a deadline
MAX_RSS = 200 * 2**20  # the memory a crawl or fetch may reach, whatever the server sends
# Bodies no client may read whole: 1 GiB bombs, 200 MB with and without a length.
BIG = [
    "/bomb/gzip",
    "/bomb/double-gzip",
    "/bomb/deflate",
    "/bomb/raw-deflate",
    "/huge?mb=200&length=1",
    "/huge?mb=200&length=0",
]


def build_bombs(size: int = BOMB_SIZE) -> dict[str, tuple[bytes, str]]:
    """``size`` zeros, deflated once and wrapped as gzip, gzip in gzip, zlib deflate
    and raw deflate: name -> (body, Content-Encoding)."""
    raw, crc, adler = deflated_zeros(size)
    gzipped = gzip_member(raw, crc, size)
    return {
        "gzip": (gzipped, "gzip"),
        "double-gzip": (gzip.compress(gzipped, 9), "gzip, gzip"),
        "deflate": (b"\x78\xda" + raw + struct.pack(">I", adler), "deflate"),
        "raw-deflate": (raw, "deflate"),
    }


# Charsets: name -> (body, Content-Type, the <title> a browser shows).
_LATIN = "caf\u00e9 \u00fcber na\u00efve"
_EURO = _LATIN + " \u20ac"


def _doc(title: str, head: str = "") -> str:
    return f"<html><head>{head}<title>{title}</title></head><body><h1>{title}</h1></body></html>"


CHARSETS: dict[str, tuple[bytes, str, str]] = {
    "header-latin1": (_doc(_LATIN).encode("latin-1"), "text/html; charset=iso-8859-1", _LATIN),
    "header-cp1252": (_doc(_EURO).encode("cp1252"), "text/html; charset=windows-1252", _EURO),
    "meta-only": (
        _doc(_EURO, '<meta charset="windows-1252">').encode("cp1252"), "text/html", _EURO,
    ),
    "meta-shift-jis": (
        _doc("\u65e5\u672c\u8a9e\u306e\u30da\u30fc\u30b8",
             '<meta http-equiv="Content-Type" content="text/html; charset=shift_jis">'
             ).encode("shift_jis"),
        "text/html", "\u65e5\u672c\u8a9e\u306e\u30da\u30fc\u30b8",
    ),
    "header-euc-kr": (
        _doc("\ud55c\uad6d\uc5b4 \ud398\uc774\uc9c0").encode("euc-kr"),
        "text/html; charset=euc-kr", "\ud55c\uad6d\uc5b4 \ud398\uc774\uc9c0",
    ),
    "bom-utf8": (b"\xef\xbb\xbf" + _doc(_EURO).encode(), "text/html", _EURO),
    # A BOM cannot be wrong about the bytes after it; a header can.
    "bom-beats-header": (
        b"\xef\xbb\xbf" + _doc(_EURO).encode(), "text/html; charset=iso-8859-1", _EURO,
    ),
    "bom-utf16": (b"\xff\xfe" + _doc(_EURO).encode("utf-16-le"), "text/html", _EURO),
    "undeclared-utf8": (_doc(_EURO).encode(), "text/html", _EURO),
    # The header is authoritative (as in browsers): cp1252 bytes read as UTF-8.
    "wrong-header": (
        _doc(_EURO).encode("cp1252"), "text/html; charset=utf-8",
        _EURO.encode("cp1252").decode("utf-8", "replace"),
    ),
    "invalid-bytes": (
        _doc("ok \udcff\udcfe end").encode("utf-8", "surrogateescape"),
        "text/html; charset=utf-8", "ok \ufffd\ufffd end",
    ),
    "unknown-label": (
        _doc(_EURO, '<meta charset="utf-8">').encode(), "text/html; charset=x-no-such-charset",
        _EURO,
    ),
}  # fmt: skip

BINARY: dict[str, tuple[bytes, str]] = {
    "png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "image/png"),
    "octet": (bytes((i * 7) & 255 for i in range(4096)), "application/octet-stream"),
    "pdf": (b"%PDF-1.4\n1 0 obj<<>>endobj\n<a href='/bin/from-pdf'>x</a>\n%%EOF\n",
            "application/pdf"),
    "doc.pdf": (b"%PDF-1.4\n%%EOF\n", "application/pdf"),
    "plain-html": (b'<html><body><a href="/bin/from-plain">x</a></body></html>', "text/plain"),
    "json": (b'{"links": ["/bin/from-json"]}', "application/json"),
}  # fmt: skip


def escape_links(root: str) -> list[str]:
    """Hrefs that would write outside the output folder if a URL's path were
    trusted as a file path. ``root`` is the test's own tmp folder: an absolute
    path is aimed there (never at /etc), so a regression is caught by a walk of
    that folder and cannot damage the machine running the tests."""
    climb = 16
    absolute = root.rstrip("/")
    return [
        "../" * climb + "escaped-dotdot.html",
        "%2e%2e/" * climb + "escaped-pct.html",
        "%2E%2E%2F" * climb + "escaped-pct2f.html",
        "..%2f" * climb + "escaped-mixed.html",
        "..%5c" * climb + "escaped-backslash.html",
        ".%2e/" * climb + "escaped-half.html",
        absolute + "/escaped-absolute.html",
        absolute + "/etc/passwd",
        "/%2F" + quote(absolute.lstrip("/"), safe="") + "%2Fescaped-encoded-absolute.html",
        "/" + "n" * 10_000 + ".html",
        "/" + "/".join(f"{k:02d}" + "d" * 248 for k in range(30)) + "/deep.html",
        "/\u00fcn\u00efc\u00f6d\u00e9/\u65e5\u672c\u8a9e/\U0001d518.html",
        "/\u202etxt.exe",
        "/%0d%0aX-Injected:%20yes/crlf.html",
        "/crlf\r\nX-Injected: yes/raw.html",
        "/nul%00byte.html",
        "/con.html",
        "/aux/prn/x",
        "/trailing-dot./trailing space%20/x",
        "/a:b/c|d?e=../../escaped-query",
        "/C:%5CWindows%5Cescaped-drive.ini",
        "/same",
        "/same/child",
    ]


Raw = Callable[[asyncio.StreamWriter], Awaitable[None]]


class HostileServer(LoopbackServer):
    """``with HostileServer() as hostile: hostile.url("/drip")``; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.ports: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._raw: asyncio.Server | None = None
        self._raw_tasks: set[asyncio.Task[None]] = set()
        self._sessions = itertools.count()
        self._flaky_left = 0
        self.bombs: dict[str, tuple[bytes, str]] = {}
        self._bombs_built = threading.Event()
        self._bomb_thread = threading.Thread(target=self._build_bombs, daemon=True)

    # lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> HostileServer:
        self._bomb_thread.start()  # 3 s of compression, overlapping the first tests
        super().__enter__()
        return self

    def _build_bombs(self) -> None:
        self.bombs = build_bombs()
        self.gzip_bomb = self.bombs["gzip"][0]
        self._bombs_built.set()

    def bombs_ready(self, timeout: float = 60) -> None:
        """Block until the bombs exist, so a bomb test's own timeout is not spent here."""
        if not self._bombs_built.wait(timeout):
            raise RuntimeError("the bombs were not built in time")

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._count])
        app.router.add_route("*", r"/{path:[\s\S]*}", self._dispatch)  # CR and LF too
        # Long request lines and headers: the escape page's 10,000-character names.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True,
                                     max_line_size=65_536, max_field_size=65_536)  # fmt: skip
        await self._runner.setup()
        for name in PORTS:
            site = web.TCPSite(self._runner, self.host, 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.ports[name], self._names[port] = port, name
        self.port = self.ports["main"]
        self._raw = await asyncio.start_server(self._raw_client, self.host, 0)
        self.ports["raw"] = self._raw.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        self._stop.set()
        if self._raw is not None:
            self._raw.close()
            for task in list(self._raw_tasks):
                task.cancel()
            await asyncio.gather(*self._raw_tasks, return_exceptions=True)
        await super()._shutdown()

    def url(self, path: str = "/", host: str | None = None, port: str = "main") -> str:
        return f"http://{host or self.host}:{self.ports[port]}{path}"

    def raw_url(self, path: str) -> str:
        return self.url(path, port="raw")

    def url_for(self, path: str) -> str:
        """``raw:/x``, ``other:/x``, ``r500:/x``... name a port; a bare path is the main one."""
        port, _, rest = path.partition(":/")
        if rest and port in self.ports:
            return self.url("/" + rest, port=port)
        return self.url(path)

    # counting --------------------------------------------------------------------------

    def _key(self, port: str, path: str) -> str:
        return path if port == "main" else f"{port}:{path}"

    def _record(self, port: str, path: str, path_qs: str, headers: dict[str, str]) -> None:
        with self._hit:
            self.hits[self._key(port, path)] += 1
            self.requests.append({"port": port, "path": path_qs, "headers": headers})
            self._hit.notify_all()

    def hits_under(self, prefix: str) -> int:
        """Hits on every path that starts with ``prefix`` (a key as in ``hits``)."""
        with self._lock:
            return sum(n for key, n in self.hits.items() if key.startswith(prefix))

    def received(self, port: str) -> list[dict[str, Any]]:
        """The requests that reached ``port``: ``{"port", "path", "headers"}``."""
        with self._lock:
            return [r for r in self.requests if r["port"] == port]

    @web.middleware
    async def _count(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        headers = {k.lower(): ", ".join(request.headers.getall(k)) for k in request.headers}
        self._record(self._port_of(request), request.path, request.path_qs, headers)
        return await handler(request)

    def _port_of(self, request: web.Request) -> str:
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        return self._names.get(sockname[1] if sockname else 0, "main")

    # dispatch --------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        port = self._port_of(request)
        if request.path.startswith(BIG_PATHS):  # on every port: a site of many hosts
            return await super()._dispatch(request)
        if port in ROBOTS:
            return await self._robots_port(port, request)
        if port == "escape":
            return self._escape_port(request)
        if request.path == "/robots.txt":
            return web.Response(text=ROBOTS_RULES)
        if request.path.startswith("/session"):  # /session;jsessionid=...
            return await self.mode_session(request, "")
        return await super()._dispatch(request)

    async def _robots_port(self, port: str, request: web.Request) -> web.StreamResponse:
        """A tiny site (``/`` links /page, /forbidden/secret) behind one robots.txt behaviour."""
        path = request.path
        if path == "/":
            return _html("robots home", ["/page", "/forbidden/secret"])
        if path in ("/robots.txt", "/moved/robots.txt", "/moved/again.txt"):
            return await self._robots_txt(port, path)
        return _html(f"leaf {path}", [])

    async def _robots_txt(self, port: str, path: str) -> web.StreamResponse:
        if port == "rredirect":
            hops = {"/robots.txt": ("/moved/robots.txt", 301),
                    "/moved/robots.txt": ("/moved/again.txt", 302)}  # fmt: skip
            if path in hops:
                target, status = hops[path]
                return web.Response(status=status, headers={"Location": target})
            return web.Response(text=ROBOTS_RULES)
        if port == "rloop":
            target = "/moved/robots.txt" if path == "/robots.txt" else "/robots.txt"
            return web.Response(status=302, headers={"Location": target})
        if port == "rflaky":
            with self._lock:
                failing, self._flaky_left = self._flaky_left > 0, max(self._flaky_left - 1, 0)
            if not failing:
                return web.Response(text=ROBOTS_RULES)
        if port == "rbig":
            filler = "# " + "x" * 78 + "\n"
            text = ROBOTS_RULES + filler * ((BIG_ROBOTS_SIZE - len(ROBOTS_RULES)) // len(filler))
            return web.Response(text=text + "Disallow: /late/\n")
        if port == "rhang":
            await self._hang()
            return web.Response(text=ROBOTS_RULES)
        status = {"r500": 500, "r404": 404, "r403": 403, "r429": 429, "rflaky": 503}[port]
        after = {"r429": "1", "r500": "0", "rflaky": "0"}.get(port)
        return web.Response(status=status, text=f"{status}\n",
                            headers={"Retry-After": after} if after else None)  # fmt: skip

    def arm_flaky_robots(self) -> None:
        """The next ROBOTS_FLAKY_FAILURES fetches of the rflaky robots.txt fail (503)."""
        with self._lock:
            self._flaky_left = ROBOTS_FLAKY_FAILURES

    def hits_for_port(self, port: str, path: str) -> int:
        return self.hits_for(self._key(port, path))

    def _escape_port(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/" and "root" in request.query:
            return _html("escape", escape_links(request.query["root"]))
        if request.path == "/robots.txt":
            raise web.HTTPNotFound()
        return _html(f"leaf {request.path_qs[:100]}", [])

    # bombs and retries -----------------------------------------------------------------

    async def _bomb(self, name: str) -> web.StreamResponse:
        if not self._bombs_built.is_set():
            await asyncio.to_thread(self.bombs_ready)
        body, encoding = self.bombs[name]
        return web.Response(body=body, headers={"Content-Encoding": encoding,
                                                "Content-Type": "text/html"})  # fmt: skip

    async def mode_gzip_bomb(self, request: web.Request, rest: str) -> web.StreamResponse:
        return await self._bomb("gzip")

    async def mode_bomb(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/bomb/<gzip|double-gzip|deflate|raw-deflate>: 1 GiB of zeros, compressed."""
        return await self._bomb(rest)

    async def mode_fill(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/fill?mb=N: N MiB at once, no Content-Length, then silence until HANG: a body
        just under a cap, held open until the client's timeout."""
        size = int(float(request.query.get("mb", "9")) * (1 << 20))
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        block = bytes(1 << 16)
        try:
            for _ in range(size // len(block)):
                await response.write(block)
            await self._hang()
        except (ConnectionError, RuntimeError):
            pass  # the client gave up, as it should
        return response

    async def mode_retry(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/retry/KEY?failures=N&status=S&after=V: S with ``Retry-After: V`` for the first
        N hits on KEY, then a page. ``after=date+S`` is an HTTP-date S seconds ahead."""
        query = request.query
        if self.hits_for(request.path) > int(query.get("failures", "1")):
            return web.Response(body=PAGE, content_type="text/html")
        after = query.get("after")
        if after is not None and after.startswith("date+"):
            after = formatdate(time.time() + float(after[5:]), usegmt=True)
        headers = {"Retry-After": after} if after is not None else {}
        return web.Response(status=int(query.get("status", "429")), text="slow down",
                            headers=headers)  # fmt: skip

    async def mode_storm(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/storm/KEY: 503, always (``?after=V`` adds a Retry-After)."""
        after = request.query.get("after")
        return web.Response(status=503, text="overloaded",
                            headers={"Retry-After": after} if after else None)  # fmt: skip

    async def mode_chain(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/chain/KEY/N: a chain of N redirects ending at a page."""
        key, _, hops = rest.partition("/")
        if int(hops or 0) <= 0:
            return web.Response(body=PAGE, content_type="text/html")
        raise web.HTTPFound(f"/chain/{key}/{int(hops) - 1}")

    # crawl-level pages -----------------------------------------------------------------

    async def mode_cs(self, request: web.Request, rest: str) -> web.StreamResponse:
        body, content_type, _ = CHARSETS[rest]
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def mode_nested(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/nested?depth=N: N nested divs around a link to /nested-leaf."""
        depth = min(int(request.query.get("depth", "100000")), 200_000)
        body = ("<html><head><title>nested</title></head><body>" + "<div>" * depth
                + '<a href="/nested-leaf">deep</a>' + "</div>" * depth + "</body></html>")  # fmt: skip
        return web.Response(text=body, content_type="text/html")

    async def mode_nested_leaf(self, request: web.Request, rest: str) -> web.StreamResponse:
        return _html("nested leaf", [])

    async def mode_malformed(self, request: web.Request, rest: str) -> web.StreamResponse:
        """Everything wrong at once: unclosed and stray tags, broken attributes, NUL bytes,
        an unterminated comment, JSON-LD nested 100,000 deep; a link to /malformed-leaf."""
        body = (
            "<html><head><title>broken <b>title</title><meta name=description content='x\x00y'>"
            "<script type='application/ld+json'>" + "[" * 100_000 + "</script>"
            "</head><body></body><p><<<>>><a href='/malformed-leaf'>leaf</a><div id=a id=b>"
            '<a href="javascript:alert(1)">js</a><span class="unterminated>'
            "<a href='http://[::1'>bad</a><a href='http://127.0.0.1:99999/'>port</a>"
            "</td></tr></table><table><tr><td><h1>heading\x00</h1></i></u><!-- never closed"
        )
        return web.Response(text=body, content_type="text/html")

    async def mode_malformed_leaf(self, request: web.Request, rest: str) -> web.StreamResponse:
        return _html("malformed leaf", [])

    async def mode_after_html(self, request: web.Request, rest: str) -> web.StreamResponse:
        """Content after ``</html>`` (an appended tracker, a bad template): browsers put it
        in the body; a link to /after-html-leaf is there."""
        body = (
            "<html><head><title>after html</title></head><body><p>first</p></body></html>"
            "<p>appended <a href='/after-html-leaf'>leaf</a></p>"
        )
        return web.Response(text=body, content_type="text/html")

    async def mode_after_html_leaf(self, request: web.Request, rest: str) -> web.StreamResponse:
        return _html("after html leaf", [])

    async def mode_bin(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/bin/: links to every binary type; /bin/<kind>: that body with its type."""
        if not rest:
            return _html("binary", [f"/bin/{kind}" for kind in BINARY])
        if rest not in BINARY:
            return _html(f"reached {rest}", [])
        body, content_type = BINARY[rest]
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def mode_calendar(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/calendar/YYYY/MM: a month linking to the next and the previous, forever."""
        year, _, month = rest.partition("/")
        index = int(year) * 12 + int(month or 1) - 1
        links = [f"/calendar/{(i // 12):04d}/{(i % 12) + 1:02d}" for i in (index - 1, index + 1)]
        return _html(f"calendar {rest}", links)

    async def mode_session(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/session: links to itself with a fresh ``?sid=`` and ``;jsessionid=``, forever."""
        a, b = next(self._sessions), next(self._sessions)
        return _html("session", [f"/session?sid={a:08x}", f"/session;jsessionid={b:016X}"])

    async def mode_rep(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/rep/a/a/.../: each links to ``a/`` below itself, forever."""
        return _html(f"repeat {rest.count('a')}", ["a/"])

    async def mode_grow(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/grow?q=...: links to itself with 150 more characters, forever."""
        return _html("grow", ["/grow?q=" + request.query.get("q", "") + "x" * 150])

    async def mode_soft404(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/soft404/<anything>: 200 "Page not found", with links to three more made-up paths."""
        n = next(self._sessions)
        links = [f"/soft404/missing-{n}-{k}" for k in range(3)]
        return _html("Page not found", links)

    async def mode_forbidden(self, request: web.Request, rest: str) -> web.StreamResponse:
        return _html("robots.txt disallows this", [])

    # raw sockets -----------------------------------------------------------------------

    async def _raw_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._raw_tasks.add(task)
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            target = [*line.split(" "), "/", "/"][1]
            path = target.partition("?")[0]
            self._record("raw", path, target, {})
            handler: Raw = getattr(self, "raw_" + path.strip("/").replace("-", "_"), self.raw_404)
            await handler(writer)
        except (ConnectionError, OSError):
            pass  # the client hung up: what clients do to hostile servers
        finally:
            self._raw_tasks.discard(task)
            writer.transport.abort()

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    async def raw_404(self, writer: asyncio.StreamWriter) -> None:
        await self._send(
            writer, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )

    async def raw_garbage(self, writer: asyncio.StreamWriter) -> None:
        """An SSH banner and binary noise instead of HTTP."""
        await self._send(writer, b"SSH-2.0-OpenSSH_9.6\r\n" + bytes(range(256)) * 16)

    async def raw_binary(self, writer: asyncio.StreamWriter) -> None:
        await self._send(writer, bytes((i * 131 + 7) & 255 for i in range(8192)))

    async def raw_bad_status(self, writer: asyncio.StreamWriter) -> None:
        await self._send(writer, b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok")

    async def raw_no_response(self, writer: asyncio.StreamWriter) -> None:
        """Close without a byte."""

    async def raw_header_flood(self, writer: asyncio.StreamWriter) -> None:
        """One header line of a megabyte."""
        await self._send(writer, b"HTTP/1.1 200 OK\r\nX-Flood: " + b"a" * (1 << 20) + b"\r\n\r\n")

    async def raw_bad_chunks(self, writer: asyncio.StreamWriter) -> None:
        await self._send(writer, _CHUNKED + b"5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n")

    async def raw_chunks_cut(self, writer: asyncio.StreamWriter) -> None:
        """A good chunk, then the connection closes with no last chunk."""
        await self._send(writer, _CHUNKED + b"5\r\nhello\r\n")

    async def raw_chunk_lies(self, writer: asyncio.StreamWriter) -> None:
        """A chunk announced as 1 MiB, ten bytes of it, then a close."""
        await self._send(writer, _CHUNKED + b"100000\r\n0123456789")

    async def raw_short_body(self, writer: asyncio.StreamWriter) -> None:
        """Content-Length 1000, ten bytes, a clean close."""
        await self._send(writer, _headers(1000) + b"0123456789")

    async def raw_short_body_hang(self, writer: asyncio.StreamWriter) -> None:
        """Content-Length 1000, ten bytes, then silence until HANG."""
        await self._send(writer, _headers(1000) + b"0123456789")
        await self._hang()

    async def raw_reset_mid_body(self, writer: asyncio.StreamWriter) -> None:
        """Content-Length 100,000, a thousand bytes, then a TCP reset."""
        await self._send(writer, _headers(100_000) + b"x" * 1000)
        sock = writer.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"


def _headers(length: int) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {length}\r\n\r\n".encode()
    )


def _html(title: str, links: list[str]) -> web.Response:
    anchors = "".join(f'<a href="{href}">{k}</a> ' for k, href in enumerate(links))
    body = f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{anchors}</body></html>"
    return web.Response(text=body, content_type="text/html")
