"""What the two thread engines share: one blocking exchange with ``requests``,
its error mapping, and the asyncio side that awaits a worker's answer.

``threads`` and ``futures`` differ only in how a job reaches a thread
(``_submit``); everything that touches HTTP lives here, once.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import time
from abc import abstractmethod

import requests
import urllib3
import urllib3.connection
import urllib3.exceptions

from crawler.engines._errors import blocked, connect_error, require_http_url
from crawler.engines._sessions import Job, new_jar, running
from crawler.engines._slots import LARGE_BODY, Slot, ThreadSlots
from crawler.engines.base import EngineOptions
from crawler.errors import (
    BodyTooLarge,
    FetchError,
    FetchTimeout,
    InvalidURL,
    ProtocolError,
)
from crawler.models import AsyncResource, Headers, Request, Response, Timeouts, make_headers

__all__ = ["Abandoned", "ThreadedEngine", "perform"]

_CHUNK = 64 * 1024


class Abandoned(Exception):
    """The caller stopped waiting; the worker drops the job."""


def perform(session: requests.Session, job: Job) -> Response:
    """Run one exchange in the calling (worker) thread and translate its errors."""
    running.job = job
    try:
        return _perform(session, job)
    finally:
        running.job = None
        with job.lock:
            job.connection = None


def _perform(session: requests.Session, job: Job) -> Response:
    request, timeouts, deadline = job.request, job.timeouts, job.deadline
    started = time.monotonic()
    remaining = max(deadline - started, 0.001)
    in_body = False
    try:
        raw = session.request(
            request.method,
            request.url,
            headers=_joined(request.headers),
            data=request.body,
            allow_redirects=False,
            stream=True,
            timeout=(
                min(timeouts.effective_connect, remaining),
                min(timeouts.effective_read, remaining),
            ),
        )
        with raw:
            in_body = True
            body = b"" if request.method == "HEAD" else _read_body(raw, job)
            return Response(
                request=request,
                status=raw.status_code,
                reason=raw.reason or "",
                headers=make_headers((k, _as_utf8(v)) for k, v in raw.raw.headers.items()),
                body=body,
                url=request.url,
                elapsed=time.monotonic() - started,
                hold=job.slot,
            )
    except BaseException as exc:
        if job.slot is not None:  # the body was not delivered: nobody holds it
            job.slot.release()
        if isinstance(exc, FetchError | Abandoned) or not isinstance(exc, Exception):
            raise
        raise _translate(exc, job, in_body) from exc
    finally:
        job.slot = None


def _joined(headers: Headers) -> dict[str, str]:
    """requests takes one value per name: repeated headers are joined, as RFC 9110 allows."""
    joined: dict[str, str] = {}
    for name in headers:
        if name not in joined:
            joined[name] = ", ".join(headers.getall(name))
    return joined


def _as_utf8(value: str) -> str:
    """http.client decodes headers as Latin-1; servers send UTF-8 (aiohttp reads them so)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _read_body(raw: requests.Response, job: Job) -> bytes:
    """Stream the body with ``read1`` so no read waits for a full buffer, and
    shrink the socket timeout to what is left of the total, so a dripping
    server is cut off at the deadline, not one read timeout after it."""
    limit = job.request.max_bytes
    stream = raw.raw
    declared = stream.headers.get("content-length", "")
    if "content-encoding" not in stream.headers and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(
            f"body of {declared} bytes exceeds max_bytes={limit}", request=job.request
        )
    sock = _socket_of(stream)
    read_timeout = job.timeouts.effective_read
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            remaining = _time_left(job)
            if sock is not None:
                sock.settimeout(min(read_timeout, remaining))
            chunk = stream.read1(_CHUNK, decode_content=True)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(
                    f"body exceeds max_bytes={limit}", request=job.request, received=size
                )
            if job.slot is None and job.slots is not None and size > LARGE_BODY:
                job.slot = _take_slot(job.slots, job)
            chunks.append(chunk)
    finally:
        chunks.clear()  # an error's traceback keeps this frame alive, maybe in a cycle


def _take_slot(slots: ThreadSlots, job: Job) -> Slot:
    """Wait for a slot until the deadline, giving up at once if the caller does."""
    while (slot := slots.take(min(_time_left(job), 0.1))) is None:
        pass
    return slot


def _time_left(job: Job) -> float:
    """Seconds to the job's deadline; stop now if it passed or the caller gave up."""
    if job.abandoned.is_set():
        raise Abandoned
    remaining = job.deadline - time.monotonic()
    if remaining <= 0:
        raise _total_timeout(job)
    return remaining


def _socket_of(stream: urllib3.response.BaseHTTPResponse) -> socket.socket | None:
    connection = getattr(stream, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _total_timeout(job: Job) -> FetchTimeout:
    return FetchTimeout(
        f"total timeout after {job.timeouts.total:g}s", phase="total", request=job.request
    )


def _translate(exc: Exception, job: Job, in_body: bool) -> FetchError:
    request = job.request
    detail = str(exc) or type(exc).__name__
    if (refused := blocked(exc, request)) is not None:
        return refused
    timed_out = isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError | socket.timeout)
    if isinstance(exc, requests.ConnectTimeout):
        return FetchTimeout(
            f"connect timeout after {job.timeouts.effective_connect:g}s",
            phase="connect",
            request=request,
        )
    if timed_out:
        if time.monotonic() >= job.deadline - 0.01:
            return _total_timeout(job)
        return FetchTimeout(
            f"read timeout after {job.timeouts.effective_read:g}s", phase="read", request=request
        )
    if isinstance(exc, requests.exceptions.InvalidHeader | UnicodeEncodeError):
        return ProtocolError(f"unusable request header: {detail}", request=request)
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.InvalidSchema
        | requests.exceptions.MissingSchema
        | urllib3.exceptions.LocationParseError
        | UnicodeError,
    ):
        return InvalidURL(f"invalid URL: {detail}", request=request)
    if isinstance(
        exc,
        requests.exceptions.ContentDecodingError
        | requests.exceptions.ChunkedEncodingError
        | urllib3.exceptions.DecodeError
        | urllib3.exceptions.ProtocolError
        | http.client.HTTPException,
    ) and (in_body or _is_malformed(exc)):
        return ProtocolError(f"malformed response: {detail}", request=request)
    if in_body and isinstance(
        exc, OSError | requests.RequestException | urllib3.exceptions.HTTPError
    ):
        return ProtocolError(f"connection lost while reading the body: {detail}", request=request)
    if _is_malformed(exc):
        return ProtocolError(f"malformed response: {detail}", request=request)
    if isinstance(exc, requests.ConnectionError | OSError | urllib3.exceptions.HTTPError):
        return connect_error(exc, request)
    return FetchError(f"{type(exc).__name__}: {detail}", request=request)


def _is_malformed(exc: BaseException) -> bool:
    """A status line or headers that are not HTTP (requests wraps these in ConnectionError)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, http.client.RemoteDisconnected):
            return False
        if isinstance(current, http.client.HTTPException):
            return True
        pending.extend(a for a in current.args if isinstance(a, BaseException))
        if current.__cause__ is not None:
            pending.append(current.__cause__)
        if current.__context__ is not None:
            pending.append(current.__context__)
    return False


class ThreadedEngine(AsyncResource):
    """The asyncio half of a thread engine: submit a job, await it with the
    request's total deadline, and mark it abandoned when the caller gives up."""

    def __init__(self, options: EngineOptions) -> None:
        self._options = options
        self._jar = new_jar(options)
        self._open = False
        large = options.large_bodies
        self._slots = ThreadSlots(large) if large is not None else None

    async def open(self) -> None:
        if not self._open:
            self._start()
            self._open = True

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._stop()

    @abstractmethod
    def _start(self) -> None:
        """Get threads ready to take jobs."""

    @abstractmethod
    def _stop(self) -> None:
        """Let the threads go; must not wait for exchanges still running."""

    @abstractmethod
    def _submit(self, job: Job) -> asyncio.Future[Response]:
        """Hand ``job`` to a thread; the future settles on the event loop's thread."""

    async def send(self, request: Request) -> Response:
        if not self._open:
            raise RuntimeError("engine is not open: use `async with engine:`")
        require_http_url(request, self._options.guard)
        timeouts = request.timeouts or Timeouts()
        job = Job(
            request, timeouts, time.monotonic() + timeouts.total, self._options.guard, self._slots
        )
        future = self._submit(job)
        try:
            async with asyncio.timeout(timeouts.total):
                return await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # Nobody cancelled the caller: the engine closed under a queued request.
            raise FetchError("engine closed before the request was sent", request=request) from None
        except TimeoutError as exc:
            if isinstance(exc, FetchError):
                raise
            raise _total_timeout(job) from exc
        finally:
            if not future.done() or future.cancelled():
                job.abandoned.set()
                job.abort()
            future.cancel()
