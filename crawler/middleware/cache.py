"""An HTTP cache that always asks the server: validators and bodies kept in SQLite,
every GET revalidated with a conditional request, a 304 answered from the store.

``HttpCache`` never serves a response without a request: no freshness lifetimes,
no heuristics, so what a fetch returns is what the server says now, only cheaper to
transfer when it has not changed. That is simple, predictable, and what a crawler
wants from a cache.

Why not hishel, requests-cache or aiohttp-client-cache: each is well kept, and each
binds to one HTTP client (httpx, requests, aiohttp). This cache is a middleware in
the policy chain, above the engines, so it works the same on every engine and
composes with the other policies: ``FollowRedirects`` outside it (each hop is
looked up by its own URL) and ``Retry`` inside it (a revalidation answered 503 is
retried before the cache sees the answer).

What it does, for a GET whose caller set no conditional or range header of their
own (those, and every other method, pass through untouched):

- a stored entry for the method and canonical URL (``crawler.urls.canonicalize``)
  adds ``If-None-Match`` (its ``ETag``) and ``If-Modified-Since`` (its
  ``Last-Modified``), unless the response varied on a request header (``Vary``)
  that is different now, or the stored body is over the request's ``max_bytes``;
- a 304 to that returns the stored response: its status and body, its headers
  updated by the 304's (RFC 9111 4.3.4, simply: each field the 304 sends replaces
  the stored one, except those describing the body as sent), ``from_cache=True``;
- a 200 with an ``ETag`` or a ``Last-Modified`` is stored (status, headers, body),
  unless it says ``Cache-Control: no-store`` or ``Vary: *``; a 200 that cannot be
  stored drops what was stored for the URL; other statuses leave the store alone.

Responses carry the request as the caller sent it, without the validators added
here, so a redirect never takes them to the next hop.
"""

from __future__ import annotations

import os

from crawler.middleware._cache_store import CacheStore, Entry, Stored
from crawler.models import AsyncResource, Handler, Request, Response, make_headers
from crawler.urls import canonicalize

__all__ = ["HttpCache", "conditions"]

# Headers that make a request conditional or partial: the caller is validating or
# slicing on their own, and a 304 or 206 is theirs to read.
CALLER_CONDITIONS = frozenset(
    {"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"}
)
# Fields a 304 never replaces: they describe the stored body as it was sent.
_BODY_FIELDS = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}
)


class HttpCache(AsyncResource):
    """Revalidate every GET against the responses stored in the SQLite file ``path``.

    A middleware and a resource: ``async with HttpCache(path) as cache:`` (the
    Fetcher opens and closes the one its ``cache`` setting names, with its engine).
    Opening a directory, a file that is not SQLite or another program's SQLite file
    raises ``ConfigError`` naming the path; the file is created when missing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._store = CacheStore(self.path)

    async def open(self) -> None:
        await self._store.open()

    async def aclose(self) -> None:
        await self._store.aclose()

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        if request.method != "GET" or not CALLER_CONDITIONS.isdisjoint(
            name.lower() for name in request.headers
        ):
            return await call_next(request)
        if not self._store.is_open:
            raise RuntimeError("HttpCache is not open: use `async with HttpCache(path):`")
        url = canonicalize(request.url)
        entry = await self._store.find("GET", url)
        if entry is None or not _serves(entry, request):
            response = await call_next(request)
        else:
            response = await call_next(request.replace(headers=make_headers([
                *request.headers.items(), *conditions(entry.etag, entry.last_modified)
            ])))  # fmt: skip
            # The caller's request, as the inner layers shaped it but for the validators.
            response = response.replace(request=response.request.replace(headers=request.headers))
            if response.status == 304:
                stored = await self._store.load("GET", url, entry)
                if stored is not None:
                    return await self._revalidated(url, entry, stored, response)
                response = await call_next(request)  # replaced or dropped meanwhile: ask plainly
        await self._keep(url, entry, request, response)
        return response

    async def _revalidated(
        self, url: str, entry: Entry, stored: Stored, confirmed: Response
    ) -> Response:
        """The stored response, with the fields the 304 sent; the store learns any new
        validators (the body stays as it is)."""
        fresh = {name.lower() for name in confirmed.headers} - _BODY_FIELDS
        headers = [(k, v) for k, v in stored.headers if k.lower() not in fresh]
        headers += [(k, v) for k, v in confirmed.headers.items() if k.lower() in fresh]
        merged = make_headers(headers)
        validators = Entry(merged.get("etag"), merged.get("last-modified"), entry.vary)
        if validators != entry:
            await self._store.refresh("GET", url, entry, validators, headers)
        return Response(
            request=confirmed.request, status=stored.status, headers=merged, body=stored.body,
            reason=stored.reason, elapsed=confirmed.elapsed, from_cache=True,
        )  # fmt: skip

    async def _keep(
        self, url: str, entry: Entry | None, request: Request, response: Response
    ) -> None:
        """Store a complete response that has validators; forget a URL whose complete
        response cannot be stored (what was stored no longer describes it)."""
        if response.status != 200:
            return
        validators = _storable(request, response)
        if validators is None:
            if entry is not None:
                await self._store.drop("GET", url)
        elif validators != entry:  # equal: what is stored (a server ignoring conditions)
            stored = Stored(
                response.status, response.reason, list(response.headers.items()), response.body
            )
            await self._store.put("GET", url, validators, stored)


def _serves(entry: Entry, request: Request) -> bool:
    """Whether the stored response may answer ``request`` once confirmed."""
    return entry.size <= request.max_bytes and all(
        _header(request, name) == value for name, value in entry.vary
    )


def conditions(etag: str | None, last_modified: str | None) -> list[tuple[str, str]]:
    """The headers that ask whether a response with these validators has changed."""
    headers = [("If-None-Match", etag)] if etag else []
    if last_modified:
        headers.append(("If-Modified-Since", last_modified))
    return headers


def _storable(request: Request, response: Response) -> Entry | None:
    """The entry ``response`` is stored under, or None when it may not be stored."""
    etag, last_modified = response.headers.get("etag"), response.headers.get("last-modified")
    vary = _tokens(response, "vary")
    if (etag is None and last_modified is None) or "*" in vary:
        return None
    if "no-store" in _tokens(response, "cache-control"):
        return None
    return Entry(etag, last_modified, tuple((name, _header(request, name)) for name in vary))


def _tokens(response: Response, name: str) -> list[str]:
    """The comma-separated tokens of every ``name`` field, lower-cased, without
    their arguments (``max-age=0`` reads as ``max-age``)."""
    return [
        token.partition("=")[0].strip().lower()
        for value in response.headers.getall(name, [])
        for token in value.split(",")
        if token.strip()
    ]


def _header(request: Request, name: str) -> str | None:
    values = request.headers.getall(name, [])
    return ", ".join(values) if values else None
