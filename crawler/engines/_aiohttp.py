"""The ``aiohttp`` engine: one ClientSession, a bounded TCPConnector, a semaphore."""

from __future__ import annotations

import asyncio
import ssl
import time

import aiohttp

from crawler.engines._errors import connect_error, require_http_url
from crawler.engines.base import EngineOptions
from crawler.errors import (
    BodyTooLarge,
    FetchError,
    FetchTimeout,
    InvalidURL,
    ProtocolError,
)
from crawler.models import Request, Response, Timeouts
from crawler.resources import AsyncResource

__all__ = ["AiohttpEngine"]

_CHUNK = 64 * 1024


class AiohttpEngine(AsyncResource):
    """Concurrency is bounded twice on purpose: the semaphore queues callers
    fairly (FIFO), the connector's limit caps sockets."""

    def __init__(self, options: EngineOptions) -> None:
        self._options = options
        self._session: aiohttp.ClientSession | None = None
        self._semaphore = asyncio.Semaphore(options.concurrency)

    async def open(self) -> None:
        if self._session is None:
            self._semaphore = asyncio.Semaphore(self._options.concurrency)
            verify = self._options.verify_tls
            connector = aiohttp.TCPConnector(
                limit=self._options.concurrency,
                limit_per_host=0,
                ssl=await asyncio.to_thread(ssl.create_default_context, cafile=verify)
                if isinstance(verify, str)
                else verify,
                ttl_dns_cache=300,
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

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send(self, request: Request) -> Response:
        if self._session is None:
            raise RuntimeError("engine is not open: use `async with engine:`")
        require_http_url(request)
        timeouts = request.timeouts or Timeouts()
        started = time.monotonic()
        in_body = False
        try:
            async with (
                asyncio.timeout(timeouts.total),
                self._semaphore,
                self._session.request(
                    request.method,
                    request.url,
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
                body = b"" if request.method == "HEAD" else await _read_body(raw, request)
                return Response(
                    request=request,
                    status=raw.status,
                    reason=raw.reason or "",
                    headers=raw.headers,
                    body=body,
                    url=request.url,
                    elapsed=time.monotonic() - started,
                )
        except FetchError:
            raise
        except Exception as exc:
            raise _translate(exc, request, timeouts, in_body) from exc


async def _read_body(raw: aiohttp.ClientResponse, request: Request) -> bytes:
    limit = request.max_bytes
    if "content-encoding" not in raw.headers and (raw.content_length or 0) > limit:
        raise BodyTooLarge(
            f"body of {raw.content_length} bytes exceeds max_bytes={limit}", request=request
        )
    body = bytearray()
    while chunk := await raw.content.readany():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"body exceeds max_bytes={limit}", request=request)
    return bytes(body)


def _translate(exc: Exception, request: Request, timeouts: Timeouts, in_body: bool) -> FetchError:
    """Map one aiohttp or OS error onto our tree (the original becomes ``__cause__``)."""
    detail = str(exc) or type(exc).__name__
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
