"""What an origin's robots.txt says, and how the answer travels between the workers
of a crawl.

An answer is a parse (protego) or a blanket one: allow all (a 4xx, a file too
large) or disallow all until it can be fetched (a 5xx, 429, no answer), with the
error that says why. Workers sharing a crawl store one answer per origin
(``RobotsStore``): a JSON line, then the bytes to parse, so each worker parses it
itself. One worker claims the fetch and stores the answer with its lifetime; the
others poll for it, every 10 ms growing to 200 ms. A claimer that fails lets go at
once; one that dies holds the claim for ``claim_timeout`` seconds, after which
another worker fetches.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, NamedTuple, Protocol

from protego import Protego

from crawler.errors import (
    ConnectError,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidURL,
    ProtocolError,
    TooManyRedirects,
)
from crawler.models import Request, Response, make_headers

__all__ = [
    "ALLOW_ALL",
    "Fetched",
    "RobotsStore",
    "Rules",
    "judge",
    "parse_rules",
    "reworded",
    "shared_answer",
    "status_error",
    "unreachable",
]

CLAIM_POLL_MIN, CLAIM_POLL_MAX = 0.01, 0.2  # seconds between looks at a claimed origin
_FORMAT = 1  # version of the answers in a shared store


@dataclass(frozen=True, slots=True)
class Rules:
    """What an origin's robots.txt says: a parse, or a blanket answer. ``unreachable``
    is set, with why, when the answer is "disallow all until it can be fetched"."""

    parser: Protego | None = None
    allow_all: bool = True
    unreachable: FetchError | None = None

    def allows(self, url: str, product_token: str) -> bool:
        """The answer for ``url`` once the rules are known (``unreachable`` aside)."""
        if self.parser is None:
            return self.allow_all
        allowed: bool = self.parser.can_fetch(url, product_token)
        return allowed


ALLOW_ALL = Rules(allow_all=True)


class Fetched(NamedTuple):
    rules: Rules
    ttl: float
    body: bytes | None = None  # for a parse: the bytes parsed, for other workers to parse


class RobotsStore(Protocol):
    """robots.txt answers shared by every worker of a crawl
    (``crawler.crawl.cluster.SharedPoliteness``); failures raise ``FrontierError``."""

    async def get_robots(self, origin: str) -> tuple[bytes, float] | None:
        """The answer stored for ``origin`` and the seconds it stays fresh."""
        ...

    async def claim_robots(self, origin: str, seconds: float) -> bool:
        """Become the one worker that fetches ``origin``'s robots.txt, for ``seconds``."""
        ...

    async def put_robots(self, origin: str, answer: bytes, ttl: float) -> None:
        """Store ``answer`` for ``ttl`` seconds and let go of the claim."""
        ...

    async def unclaim_robots(self, origin: str) -> None:
        """Let go of the claim without an answer; never raises (the claim runs out)."""
        ...


async def shared_answer(
    shared: RobotsStore,
    origin: str,
    download: Callable[[], Awaitable[Fetched]],
    claim_timeout: float,
) -> tuple[Rules, float]:
    """The origin's rules from the store, fetched by whichever worker claims them."""
    pause = CLAIM_POLL_MIN
    while (stored := await _stored(shared, origin)) is None:
        if await shared.claim_robots(origin, claim_timeout):
            # Look again: the claimer before us may have stored its answer, and let
            # go, between our look and our claim.
            stored = await _stored(shared, origin)
            if stored is not None:
                await shared.unclaim_robots(origin)
                return stored
            try:
                fetched = await download()
            except BaseException:
                # Shielded: a cancelled claimer still lets the others take over now.
                await asyncio.shield(shared.unclaim_robots(origin))
                raise
            await shared.put_robots(origin, encode_answer(fetched), fetched.ttl)
            return fetched.rules, fetched.ttl
        await asyncio.sleep(pause * random.uniform(0.8, 1.2))
        pause = min(pause * 1.5, CLAIM_POLL_MAX)
    return stored


async def _stored(shared: RobotsStore, origin: str) -> tuple[Rules, float] | None:
    """The rules in the store and their seconds left; None when absent, or in a
    form this version cannot read (then it is fetched again and overwritten)."""
    stored = await shared.get_robots(origin)
    rules = None if stored is None else decode_answer(stored[0])
    return None if stored is None or rules is None else (rules, stored[1])


def decode_answer(answer: bytes) -> Rules | None:
    """Rules from another worker's ``_encode``; None when it cannot be read."""
    head, _, body = answer.partition(b"\n")
    try:
        record = json.loads(head)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("v") != _FORMAT:
        return None
    if record.get("parse") is True:
        return parse_rules(body)
    error = record.get("error")
    if isinstance(error, dict):
        return unreachable(_error_from(error))
    return ALLOW_ALL if record.get("allow") is True else None


def unreachable(cause: FetchError) -> Rules:
    # Cached for every origin that fails: no traceback may pin an engine's frames
    # (and the half-read body in them) for error_max_age.
    seen: set[int] = set()
    link: BaseException | None = cause
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__traceback__ = None
        link = link.__cause__ or link.__context__
    return Rules(allow_all=False, unreachable=cause)


def parse_rules(body: bytes) -> Rules:
    return Rules(
        parser=Protego.parse(body.decode("utf-8", errors="replace").removeprefix("\ufeff"))
    )


# shared answers: a JSON line, then the bytes to parse ---------------------------------------

_ERRORS: dict[str, type[FetchError]] = {
    error.__name__: error for error in (FetchError, ProtocolError, InvalidURL, TooManyRedirects)
}


def encode_answer(fetched: Fetched) -> bytes:
    """What another worker needs to rebuild ``fetched.rules``: the parsed bytes, or
    the blanket answer with the error (kind and message) that caused it."""
    rules = fetched.rules
    record: dict[str, Any] = {"v": _FORMAT}
    if rules.parser is not None:
        record["parse"] = True
    elif rules.unreachable is not None:
        record["error"] = _error_record(rules.unreachable)
    else:
        record["allow"] = rules.allow_all
    head = json.dumps(record, separators=(",", ":")).encode()
    return head + b"\n" + (fetched.body if rules.parser is not None and fetched.body else b"")


def _error_record(exc: FetchError) -> dict[str, Any]:
    record: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, FetchTimeout):
        record["phase"] = exc.phase
    elif isinstance(exc, ConnectError):
        record["kind"] = exc.kind
    elif isinstance(exc, HTTPStatusError):
        response = exc.response
        record.update(status=response.status, reason=response.reason, url=response.url)
    return record


def _error_from(record: dict[str, Any]) -> FetchError:
    """The error ``_error_record`` describes, of the same class (the crawl files a
    deferred page under its kind), without the request or cause it had elsewhere."""
    kind, message = record.get("type"), str(record.get("message", "robots.txt unreachable"))
    if kind == "FetchTimeout" and record.get("phase") in ("connect", "read", "total"):
        return FetchTimeout(message, phase=record["phase"])
    if kind == "ConnectError" and record.get("kind") in ("connect", "refused", "dns", "tls"):
        return ConnectError(message, kind=record["kind"])
    if kind == "HTTPStatusError" and isinstance(record.get("status"), int):
        url = str(record.get("url", ""))
        bare = Response(
            Request(url), record["status"], make_headers(), reason=str(record.get("reason", ""))
        )
        return HTTPStatusError(message, response=bare)
    return _ERRORS.get(str(kind), FetchError)(message)


def judge(response: Response, max_bytes: int, max_age: float, error_max_age: float) -> Fetched:
    """What a final answer for robots.txt means, and for how long (RFC 9309 2.3.1)."""
    status = response.status
    if 200 <= status < 300:
        body = response.body
        if len(body) > max_bytes:  # parse the first max_bytes, whole lines only
            body = body[:max_bytes]
            body = body[: body.rfind(b"\n") + 1] or body
        return Fetched(parse_rules(body), max_age, body)
    if status >= 500 or status == 429:
        return Fetched(unreachable(status_error(response)), error_max_age)
    return Fetched(ALLOW_ALL, max_age)


def status_error(response: Response) -> HTTPStatusError:
    try:
        phrase = response.reason or HTTPStatus(response.status).phrase
    except ValueError:  # a status no RFC names
        phrase = ""
    reason = f"{response.status} {phrase}".strip()
    # Without its body: the answer is cached per origin, and the body may be megabytes.
    bare = response.replace(body=b"", history=())
    return HTTPStatusError(f"robots.txt unreachable: {reason}", response=bare)


def reworded(exc: FetchError) -> FetchError:
    """``exc`` as the reason a page was not fetched: the same kind of error (the crawl
    files it by its class), saying that it was robots.txt that failed."""
    message = f"robots.txt unreachable: {exc}"
    error: FetchError
    if isinstance(exc, FetchTimeout):
        error = FetchTimeout(message, phase=exc.phase, request=exc.request)
    elif isinstance(exc, ConnectError):
        error = ConnectError(message, kind=exc.kind, request=exc.request)
    elif isinstance(exc, InvalidURL | TooManyRedirects | ProtocolError):
        error = type(exc)(message, request=exc.request)
    else:
        error = FetchError(message, request=exc.request)
    error.__cause__ = exc
    return error
