"""Follow redirects as separate requests, each through the whole inner chain.

Because the hop goes back through retry, rate limit and timeout (and the address
guard in the engine), a redirect can never sneak past a policy that the first
request had to pass.
"""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlsplit

from yarl import URL

from crawler.errors import InvalidURL, TooManyRedirects
from crawler.models import Handler, Request, Response, make_headers
from crawler.urls import parse_http_url

__all__ = ["CREDENTIALS", "FollowRedirects"]

# Headers that carry who the client is: never sent to an origin they were not meant for.
CREDENTIALS = ("authorization", "cookie", "proxy-authorization")
_BODY_HEADERS = ("content-type", "content-length", "content-encoding", "transfer-encoding")
# A Location that names an authority ("http://...", "//...") must name a host: yarl
# resolves "http://" and "//" to the current URL, which turned them into loops.
_AUTHORITY = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//")


class FollowRedirects:
    def __init__(self, max_redirects: int = 10) -> None:
        if max_redirects < 0:
            raise ValueError(f"max_redirects must be non-negative, got {max_redirects!r}")
        self.max_redirects = max_redirects

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        history: list[Response] = []
        seen = Counter([_loop_key(request)])
        while True:
            response = await call_next(request)
            if not response.is_redirect:
                return response.replace(history=tuple(history)) if history else response
            history.append(response)
            if len(history) > self.max_redirects:
                raise TooManyRedirects(
                    f"more than {self.max_redirects} redirects from {history[0].request.url}",
                    request=request,
                )
            request = next_request(response)
            key = _loop_key(request)
            seen[key] += 1
            # A second visit is legitimate (a consent page that sets a cookie and
            # sends you back); a third is a loop.
            if seen[key] > 2:
                raise TooManyRedirects(
                    f"redirect loop: {response.url} leads back to {request.url}",
                    request=request,
                )


def next_request(response: Response) -> Request:
    """The request a browser would send after ``response`` (a 3xx with Location)."""
    previous = response.request
    location = response.headers["location"].strip()
    try:
        if _AUTHORITY.match(location) and not urlsplit(location).hostname:
            raise ValueError(f"no host in {location!r}")
        target = URL(response.url).join(URL(location))
        target = parse_http_url(str(target.with_fragment(None)))
    except ValueError as exc:
        raise InvalidURL(f"bad redirect from {response.url}: {exc}", request=previous) from None

    method, body = previous.method, previous.body
    drop: set[str] = set()
    # 303 always, and 301/302 after a POST, become GET without a body (what browsers do).
    if (response.status == 303 and method != "HEAD") or (
        response.status in (301, 302) and method == "POST"
    ):
        method, body = "GET", None
        drop.update(_BODY_HEADERS)
    if target.origin() != URL(previous.url).origin():
        drop.update(CREDENTIALS)
    headers = [(k, v) for k, v in previous.headers.items() if k.lower() not in drop]
    return previous.replace(
        url=str(target), method=method, body=body, headers=make_headers(headers)
    )


def _loop_key(request: Request) -> tuple[str, str]:
    return request.method, request.url
