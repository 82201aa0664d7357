"""A loopback HTTP server with named failure modes, run on its own thread and loop.

Its own thread lets blocking callers (SyncFetcher, the thread engines) and
async tests share one server without either starving the other. Every
misbehaviour is bounded in time (``HANG``) and size, and the server counts
the hits on each path so tests can assert what really reached it: how many
requests (``hits_for``), how many at once (``/crowd``, ``peak_in_flight``) and
how much of a body the client took before hanging up (``/huge``, ``sent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import socket
import ssl
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HANG = 60.0  # the longest any handler keeps a connection open on purpose
BOMB_SIZE = 1 << 30  # decompressed size of the gzip bomb
# A child script's own peak RSS, as Python source. VmHWM, not ru_maxrss: that one keeps
# the parent's peak across fork and exec, so a big test process would show through.
PEAK_RSS = 'int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024'


def _close_unwrapped_socket(task: asyncio.Task[Any]) -> None:
    """A connection the loop accepted but whose task (``_accept_connection2``) has not yet
    run owns a socket no transport wraps: cancelling the task would leave it open until
    the garbage collector warns, at the end of the whole test session."""
    coro = task.get_coro()
    frame = getattr(coro, "cr_frame", None)
    if frame is None or getattr(coro, "__name__", "") != "_accept_connection2":
        return
    if getattr(coro, "cr_await", None) is None:  # not started: it holds only its arguments
        conn = frame.f_locals.get("conn")
        if isinstance(conn, socket.socket):
            conn.close()


@functools.cache  # the plain server's bomb and the hostile server's are the same zeros
def deflated_zeros(size: int) -> tuple[bytes, int, int]:
    """``size`` zero bytes (whole MiB) as raw deflate (about 1000:1), with their CRC-32
    and Adler-32. Each MiB is deflated on its own (a full flush forgets the history),
    so one deflated MiB repeated is the stream: compressing 1 GiB would take seconds."""
    block = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    last = compressor.compress(block) + compressor.flush()
    crc, adler = 0, 1
    for _ in range(size >> 20):
        crc, adler = zlib.crc32(block, crc), zlib.adler32(block, adler)
    return mib * ((size >> 20) - 1) + last, crc, adler


def gzip_member(raw: bytes, crc: int, size: int) -> bytes:
    """Raw deflate wrapped as one gzip member."""
    return (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        + raw
        + struct.pack("<II", crc, size % (1 << 32))
    )


def make_gzip_bomb(size: int = BOMB_SIZE) -> bytes:
    """``size`` zero bytes, gzip-compressed."""
    raw, crc, _ = deflated_zeros(size)
    return gzip_member(raw, crc, size)


PAGE = b"<!doctype html><html><head><title>ok</title></head><body><p>ok</p></body></html>"

# /site/<page>: the links of each page, for link checking.
LINKED_SITE: dict[str, list[str]] = {
    "": ["a", "missing", "/status/500", "/redirect-to?url=/status/410", "a#top", "/ok"],
    "a": ["missing", "/site/", "b?x=1&y=2", "/slow?delay=0.4"],
    "b": ["/site/b?y=2&x=1", "gone"],
}

# (body, content-type header): each page's text must decode to CHARSET_TEXT.
CHARSET_TEXT = "caf\u00e9 \u00fcber na\u00efve \u20ac"
CHARSET_PAGES: dict[str, tuple[bytes, str]] = {
    "header-latin1": (
        f"<html><body>{CHARSET_TEXT}</body></html>".replace("\u20ac", "").encode("latin-1"),
        "text/html; charset=iso-8859-1",
    ),
    "header-cp1252": (
        f"<html><body>{CHARSET_TEXT}</body></html>".encode("cp1252"),
        "text/html; charset=windows-1252",
    ),
    "meta-only": (
        (
            f'<html><head><meta charset="windows-1252"></head><body>{CHARSET_TEXT}</body></html>'
        ).encode("cp1252"),
        "text/html",
    ),
    "bom-utf8": (
        b"\xef\xbb\xbf" + f"<html><body>{CHARSET_TEXT}</body></html>".encode(),
        "text/html",
    ),
    "undeclared-utf8": (f"<html><body>{CHARSET_TEXT}</body></html>".encode(), "text/html"),
    "shift-jis": (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=shift_jis">'
        "</head><body>\u65e5\u672c\u8a9e</body></html>".encode("shift_jis"),
        "text/html",
    ),
    "euc-kr": (
        "<html><body>\ud55c\uad6d\uc5b4</body></html>".encode("euc-kr"),
        "text/html; charset=euc-kr",
    ),
}


@dataclass
class _Crowd:
    """The requests of one ``/crowd`` key: how many are in the handler now, the most
    there were at once, and whether ``n`` of them have met."""

    in_flight: int = 0
    peak: int = 0
    met: asyncio.Event = field(default_factory=asyncio.Event)


class LoopbackServer:
    """``with LoopbackServer() as server: server.url("/ok")``."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"):
        self.host = host
        self.ssl_context = ssl_context
        self.hits: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.gzip_bomb = b""
        self._crowds: dict[str, _Crowd] = {}  # /crowd keys; read across threads with _lock
        self._sent: dict[str, int] = {}
        self._lock = threading.Lock()
        self._hit = threading.Condition(self._lock)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self.port = 0

    # lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():  # a loop still running cannot be closed
            self._loop.close()

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._count])
        app.router.add_route("*", "/{path:.*}", self._dispatch)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=self.ssl_context)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        self._stop.set()
        if self._runner is not None:
            await self._runner.cleanup()
        # Python 3.11 stops listening but leaves a connection accepted in that very
        # instant (a client still connecting as a test ends) to no handler, open until
        # the garbage collector complains: finish what is pending, then abort the rest.
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            _close_unwrapped_socket(task)
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # A transport closed with bytes unsent waits for a client that stopped reading:
        # abort those too (abort of an aborted one is a no-op). The callbacks that
        # close their sockets are queued ahead of the loop's stop, so they run.
        transports = getattr(self._loop, "_transports", {})  # the selector loop's own table
        for transport in list(transports.values()):
            if transport is not None:
                transport.abort()

    def url(self, path: str = "/", host: str | None = None) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def hits_for(self, path: str) -> int:
        with self._lock:
            return self.hits[path]

    def wait_for_hits(self, path: str, count: int, timeout: float = 10.0) -> bool:
        """Block until ``path`` has been requested ``count`` times in all."""
        with self._hit:
            return self._hit.wait_for(lambda: self.hits[path] >= count, timeout)

    def peak_in_flight(self, key: str) -> int:
        """The most ``/crowd/<key>`` requests the server was handling at once."""
        with self._lock:
            crowd = self._crowds.get(key)
            return crowd.peak if crowd else 0

    def sent(self, key: str, timeout: float = 10.0) -> int:
        """Bytes of body the ``/huge?key=<key>`` request got written before its
        client hung up (or all of them), once its handler has ended; waits for that
        up to ``timeout`` seconds (a hang guard), then fails."""
        with self._hit:
            if not self._hit.wait_for(lambda: key in self._sent, timeout):
                raise AssertionError(f"/huge?key={key} still sending after {timeout} s")
            return self._sent[key]

    # plumbing ----------------------------------------------------------------------------

    @web.middleware
    async def _count(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        with self._hit:
            self.hits[request.path] += 1
            self.requests.append({"host": request.host, "path": request.path_qs})
            self._hit.notify_all()
        return await handler(request)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        first, _, rest = request.match_info["path"].partition("/")
        handler = getattr(self, "mode_" + first.replace("-", "_"), None) if first else self.mode_ok
        if handler is None:
            raise web.HTTPNotFound()
        response: web.StreamResponse = await handler(request, rest)
        return response

    async def _hang(self) -> None:
        """Wait up to HANG seconds, less when the server shuts down."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), HANG)

    # modes: GET /<mode>/<rest> ----------------------------------------------------------

    async def mode_ok(self, request: web.Request, rest: str) -> web.StreamResponse:
        return web.Response(body=PAGE, content_type="text/html", charset="utf-8")

    async def mode_status(self, request: web.Request, rest: str) -> web.StreamResponse:
        status = int(rest)
        return web.Response(status=status, body=b"" if status in (204, 304) else f"{status}\n")

    async def mode_echo(self, request: web.Request, rest: str) -> web.StreamResponse:
        """What the server received, as JSON."""
        body = await request.read()
        payload = {
            "method": request.method,
            "path": request.path,
            "url": str(request.url),
            "query": dict(request.query),
            "headers": {k.lower(): ", ".join(request.headers.getall(k)) for k in request.headers},
            "cookies": dict(request.cookies),
            "body": body.decode("latin-1"),
        }
        return web.json_response(payload)

    async def mode_set_cookie(self, request: web.Request, rest: str) -> web.StreamResponse:
        response = web.Response(text="cookie set")
        for name, value in request.query.items():
            response.set_cookie(name, value, path="/")
        return response

    async def mode_redirect(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/redirect/N: a chain of N 302s ending at /ok."""
        hops = int(rest or 1)
        target = "/ok" if hops <= 1 else f"/redirect/{hops - 1}"
        raise web.HTTPFound(target)

    async def mode_redirect_to(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/redirect-to?url=U&status=S: one redirect to anything, however odd."""
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": request.query["url"]})

    async def mode_loop(self, request: web.Request, rest: str) -> web.StreamResponse:
        raise web.HTTPFound("/loop/b" if rest == "a" else "/loop/a")

    async def mode_drip(self, request: web.Request, rest: str) -> web.StreamResponse:
        """Headers at once, then one byte a second for up to HANG seconds."""
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for _ in range(int(HANG)):
            await response.write(b".")
            try:
                await asyncio.wait_for(self._stop.wait(), 1.0)
                break
            except TimeoutError:
                continue
        return response

    async def mode_hang_before_headers(self, request: web.Request, rest: str) -> web.StreamResponse:
        await self._hang()
        return web.Response(text="late")

    async def mode_hang_after_headers(self, request: web.Request, rest: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"x")
        await self._hang()
        return response

    async def mode_truncated(self, request: web.Request, rest: str) -> web.StreamResponse:
        """Content-Length 1000, 100 bytes, then a clean close."""
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"x" * 100)
        assert request.transport is not None
        request.transport.close()
        return response

    async def mode_reset(self, request: web.Request, rest: str) -> web.StreamResponse:
        """Content-Length 1000, 100 bytes, then a TCP reset."""
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"x" * 100)
        transport = request.transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return response

    async def mode_gzip(self, request: web.Request, rest: str) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(PAGE * 100),
            headers={"Content-Encoding": "gzip", "Content-Type": "text/html; charset=utf-8"},
        )

    async def mode_gzip_bomb(self, request: web.Request, rest: str) -> web.StreamResponse:
        assert self.gzip_bomb, "the gzip_bomb fixture prepares the payload"
        return web.Response(
            body=self.gzip_bomb,
            headers={"Content-Encoding": "gzip", "Content-Type": "text/html"},
        )

    async def mode_huge(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/huge?mb=N&length=0|1: N MiB of zeros, with or without Content-Length."""
        size = int(request.query.get("mb", "200")) << 20
        headers = {"Content-Type": "application/octet-stream"}
        if request.query.get("length", "1") == "1":
            headers["Content-Length"] = str(size)
        if "location" in request.query:
            headers["Location"] = request.query["location"]
        response = web.StreamResponse(
            status=int(request.query.get("status", "200")), headers=headers
        )
        await response.prepare(request)
        block = bytes(1 << 16)
        sent = 0
        try:
            for _ in range(size // len(block)):
                await response.write(block)
                sent += len(block)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up, as it should
        finally:  # also when aiohttp cancels the handler of a connection that closed
            if "key" in request.query:
                with self._hit:
                    self._sent[request.query["key"]] = sent
                    self._hit.notify_all()
        return response

    async def mode_retry_after(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/retry-after?value=V&status=429"""
        status = int(request.query.get("status", "429"))
        return web.Response(status=status, headers={"Retry-After": request.query["value"]})

    async def mode_flaky(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/flaky/KEY?failures=N&status=S: S for the first N hits on KEY, then 200."""
        failures = int(request.query.get("failures", "2"))
        if self.hits_for(request.path) <= failures:
            return web.Response(status=int(request.query.get("status", "503")), text="busy")
        return web.Response(body=PAGE, content_type="text/html")

    async def mode_slow(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/slow?delay=S: answer after S seconds (at most HANG)."""
        await asyncio.sleep(min(float(request.query.get("delay", "0.5")), HANG))
        return web.Response(body=PAGE, content_type="text/html")

    async def mode_crowd(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/crowd/KEY?n=N&delay=S: hold each request of KEY until N of them are in
        flight at once (from then on, none waits), then answer after S seconds. Requests
        that never meet N within ``wait`` seconds (default 10: a hang guard) get a 504. The
        most in flight at once is ``peak_in_flight(KEY)``; a request counts until its
        handler returns, before its client can read the answer, so a client that
        waits for one answer before sending the next request is never counted twice."""
        with self._lock:
            crowd = self._crowds.get(rest) or self._crowds.setdefault(rest, _Crowd())
            crowd.in_flight += 1
            crowd.peak = max(crowd.peak, crowd.in_flight)
        try:
            if crowd.in_flight >= int(request.query.get("n", "1")):
                crowd.met.set()
            wait = min(float(request.query.get("wait", "10")), HANG)
            try:
                await asyncio.wait_for(crowd.met.wait(), wait)
            except TimeoutError:
                return web.Response(status=504, text=f"at most {crowd.peak} at once")
            await asyncio.sleep(min(float(request.query.get("delay", "0")), HANG))
            return web.Response(body=PAGE, content_type="text/html")
        finally:
            with self._lock:
                crowd.in_flight -= 1

    async def mode_charset(self, request: web.Request, rest: str) -> web.StreamResponse:
        body, content_type = CHARSET_PAGES[rest]
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def mode_proxy(self, request: web.Request, rest: str) -> web.StreamResponse:
        return web.Response(text="not a proxy")

    async def mode_site(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/site/<page>: a small site whose links are listed in ``LINKED_SITE``."""
        if rest not in LINKED_SITE:
            raise web.HTTPNotFound()
        anchors = "".join(f'<a href="{href}">{href}</a>' for href in LINKED_SITE[rest])
        return web.Response(text=f"<html><body>{anchors}</body></html>", content_type="text/html")

    async def mode_say(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/say?status=S&type=T&body=B&repeat=N&h-NAME=V: any status, type, headers, and
        body (B repeated N times)."""
        query = request.query
        headers = {k[2:]: v for k, v in query.items() if k.startswith("h-")}
        headers["Content-Type"] = query.get("type", "text/plain; charset=utf-8")
        return web.Response(status=int(query.get("status", "200")), headers=headers,
                            body=query.get("body", "").encode() * int(query.get("repeat", "1")))  # fmt: skip

    async def mode_json(self, request: web.Request, rest: str) -> web.StreamResponse:
        return web.Response(text=json.dumps({"status": "ok"}), content_type="application/json")

    async def mode_redirect_with_body(self, request: web.Request, rest: str) -> web.StreamResponse:
        """A 302 with a body of its own, as many servers send."""
        return web.Response(status=302, text="moved to /ok", headers={"Location": "/ok"})

    async def mode_gate(self, request: web.Request, rest: str) -> web.StreamResponse:
        """/gate sends you to /gate-consent until the consent cookie is set."""
        if request.cookies.get("consent") == "yes":
            return web.Response(text="welcome")
        raise web.HTTPFound("/gate-consent")

    async def mode_gate_consent(self, request: web.Request, rest: str) -> web.StreamResponse:
        response = web.Response(status=302, headers={"Location": "/gate"})
        response.set_cookie("consent", "yes", path="/")
        return response

    async def mode_drip_headers(self, request: web.Request, rest: str) -> web.StreamResponse:
        """A status line, then header bytes one every 0.2 s: no read timeout ever fires."""
        transport = request.transport
        assert transport is not None
        transport.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(int(HANG * 5)):
            if transport.is_closing():
                break
            transport.write(b"x")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.2)
            if self._stop.is_set():
                break
        transport.close()
        return web.Response()
