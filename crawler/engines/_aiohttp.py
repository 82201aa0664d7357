"""The ``aiohttp`` engine: one ClientSession, a bounded TCPConnector, a semaphore."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import zlib
from collections.abc import Callable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from crawler.engines._errors import blocked, connect_error, require_http_url
from crawler.engines._slots import LARGE_BODY, AsyncSlots, Slot
from crawler.engines.base import EngineOptions
from crawler.engines.guard import AddressGuard, AddrInfo
from crawler.errors import (
    BodyTooLarge,
    FetchError,
    FetchTimeout,
    InvalidURL,
    ProtocolError,
)
from crawler.models import AsyncResource, Request, Response, Timeouts

__all__ = ["AiohttpEngine"]

_CHUNK = 64 * 1024


class AiohttpEngine(AsyncResource):
    """Concurrency is bounded twice on purpose: the semaphore queues callers
    fairly (FIFO), the connector's limit caps sockets."""

    def __init__(self, options: EngineOptions) -> None:
        self._options = options
        self._session: aiohttp.ClientSession | None = None
        self._semaphore = asyncio.Semaphore(options.concurrency)
        self._slots: AsyncSlots | None = None

    async def open(self) -> None:
        if self._session is None:
            self._semaphore = asyncio.Semaphore(self._options.concurrency)
            large = self._options.large_bodies
            self._slots = AsyncSlots(large) if large is not None else None
            verify = self._options.verify_tls
            connector = aiohttp.TCPConnector(
                limit=self._options.concurrency,
                limit_per_host=0,
                ssl=await asyncio.to_thread(ssl.create_default_context, cafile=verify)
                if isinstance(verify, str)
                else verify,
                ttl_dns_cache=300,
                resolver=_GuardedResolver(guard) if (guard := self._options.guard) else None,
                socket_factory=_socket_factory(guard) if guard else None,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookies=dict(self._options.cookies),
                # unsafe=True: keep cookies of IP-address hosts too, as requests does.
                cookie_jar=aiohttp.CookieJar(unsafe=True),
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=False,
                auto_decompress=True,
            )
            # aiohttp sends an idempotent request again when the server closes the
            # connection without answering; one send is one exchange, as on every
            # engine (stale pooled connections are checked before reuse, and retries
            # are the Retry middleware's).
            self._session._retry_connection = False

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _open_session(self, request: Request) -> aiohttp.ClientSession:
        """The session, or, for a request that waited for a slot while the engine
        closed, the error the thread engines raise too."""
        if self._session is None:
            raise FetchError("engine closed before the request was sent", request=request)
        return self._session

    async def send(self, request: Request) -> Response:
        if self._session is None:
            raise RuntimeError("engine is not open: use `async with engine:`")
        url = require_http_url(request, self._options.guard)
        timeouts = request.timeouts or Timeouts()
        started = time.monotonic()
        in_body = False
        try:
            async with (
                asyncio.timeout(timeouts.total),
                self._semaphore,
                self._open_session(request).request(
                    request.method,
                    url,
                    headers=request.headers,
                    data=request.body,
                    allow_redirects=False,
                    proxy=self._options.proxy or None,
                    timeout=aiohttp.ClientTimeout(
                        total=None,
                        sock_connect=timeouts.effective_connect,
                        sock_read=timeouts.effective_read,
                    ),
                ) as raw,
            ):
                in_body = True
                body, slot = (
                    (b"", None)
                    if request.method == "HEAD"
                    else await _read_body(raw, request, self._slots)
                )
                return Response(
                    request=request,
                    status=raw.status,
                    reason=raw.reason or "",
                    headers=raw.headers,
                    body=body,
                    url=request.url,
                    elapsed=time.monotonic() - started,
                    hold=slot,
                )
        except FetchError:
            raise
        except Exception as exc:
            raise _translate(exc, request, timeouts, in_body) from exc


def _socket_factory(guard: AddressGuard) -> Callable[[AddrInfo], socket.socket]:
    """Judge the address of every socket aiohttp opens, IP literals included
    (aiohttp does not resolve those, so the resolver never sees them)."""

    def socket_factory(info: AddrInfo) -> socket.socket:
        family, kind, proto, _, sockaddr = info
        guard.check(sockaddr[0], sockaddr[1])
        return socket.socket(family, kind, proto)

    return socket_factory


class _GuardedResolver(AbstractResolver):
    """The system resolver (as the thread engines use), its answers filtered, so
    a name with one public address among private ones still works.
    ThreadedResolver holds nothing to release, so the connector not closing a
    resolver it did not create loses nothing."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        self._resolver = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        return self._guard.permitted(results, lambda result: (result["host"], result["port"]))

    async def close(self) -> None:
        await self._resolver.close()


async def _read_body(
    raw: aiohttp.ClientResponse, request: Request, slots: AsyncSlots | None
) -> tuple[bytes, Slot | None]:
    limit = request.max_bytes
    if "content-encoding" not in raw.headers and (raw.content_length or 0) > limit:
        raise BodyTooLarge(
            f"body of {raw.content_length} bytes exceeds max_bytes={limit}", request=request
        )
    chunks: list[bytes] = []
    size = 0
    slot: Slot | None = None
    try:
        while chunk := await raw.content.readany():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(
                    f"body exceeds max_bytes={limit}", request=request, received=size
                )
            if slot is None and slots is not None and size > LARGE_BODY:
                slot = await slots.take()
            chunks.append(chunk)
        body = b"".join(chunks)  # one copy, at the end: a growing bytearray holds up to twice
        codings = raw.headers.get("content-encoding", "")
        if "," in codings:
            body = _decode_stacked(body, codings, request)
            if slot is None and slots is not None and len(body) > LARGE_BODY:
                slot = await slots.take()
        return body, slot
    except BaseException:
        if slot is not None:
            slot.release()
        raise
    finally:
        chunks.clear()  # an error's traceback keeps this frame alive, maybe in a cycle


_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}  # zlib's window bits per content-coding


def _decode_stacked(body: bytes, codings: str, request: Request) -> bytes:
    """aiohttp decodes a single content-coding; a stack (``gzip, gzip``) arrives as
    sent. Undo the layers last to first, each capped at ``max_bytes``."""
    limit = request.max_bytes
    for coding in reversed([c.strip().lower() for c in codings.split(",")]):
        if coding in ("", "identity"):
            continue
        if coding not in _WBITS:
            raise ProtocolError(f"unsupported content-coding {coding!r}", request=request)
        decoder = zlib.decompressobj(_WBITS[coding])
        try:
            body = decoder.decompress(body, limit + 1)
        except zlib.error as exc:
            raise ProtocolError(f"malformed {coding} body: {exc}", request=request) from exc
        if len(body) > limit or decoder.unconsumed_tail:
            raise BodyTooLarge(
                f"body exceeds max_bytes={limit}", request=request, received=len(body)
            )
    return body


def _translate(exc: Exception, request: Request, timeouts: Timeouts, in_body: bool) -> FetchError:
    """Map one aiohttp or OS error onto our tree (the original becomes ``__cause__``)."""
    detail = str(exc) or type(exc).__name__
    if (refused := blocked(exc, request)) is not None:
        return refused
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return FetchTimeout(
            f"connect timeout after {timeouts.effective_connect:g}s",
            phase="connect",
            request=request,
        )
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return FetchTimeout(
            f"read timeout after {timeouts.effective_read:g}s", phase="read", request=request
        )
    if isinstance(exc, TimeoutError):
        return FetchTimeout(
            f"total timeout after {timeouts.total:g}s", phase="total", request=request
        )
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidURL(f"invalid URL: {detail}", request=request)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return ProtocolError(f"malformed response: {detail}", request=request)
    if in_body and isinstance(exc, aiohttp.ClientConnectionError | OSError):
        return ProtocolError(f"connection lost while reading the body: {detail}", request=request)
    if isinstance(exc, aiohttp.ClientConnectionError | OSError):
        return connect_error(exc, request)
    if isinstance(exc, aiohttp.ClientError | ValueError | LookupError):
        return ProtocolError(f"{type(exc).__name__}: {detail}", request=request)
    return FetchError(f"{type(exc).__name__}: {detail}", request=request)
