"""Retry failed attempts with tenacity: bounded, jittered, polite to ``Retry-After``."""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Awaitable, Callable, Collection
from email.utils import parsedate_to_datetime

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.stop import stop_base

from crawler.errors import ConnectError, FetchTimeout, RetryLater
from crawler.models import Handler, Request, Response
from crawler.policy import DEFAULT_RETRY_STATUSES

__all__ = ["IDEMPOTENT_METHODS", "Retry", "parse_retry_after"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

Sleep = Callable[[float], Awaitable[None]]
_DELTA_SECONDS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() accepts "²"
# RFC 9111 5.1: a delta-seconds too large to hold is read as 2^31, never as invalid:
# "wait longer than you can count" must not become "retry at once".
_DELTA_MAX = 2**31


class Retry:
    """Retry timeouts, connection errors and ``statuses``, at most ``retries`` times.

    Waits grow exponentially from ``backoff`` with jitter, never beyond
    ``max_backoff``; a ``Retry-After`` header replaces the computed wait (capped
    the same). No retry starts once ``max_elapsed`` seconds have gone by. When
    the retries run out on a retryable status, the last response is returned,
    so the caller still sees what the server said (``raise_for_status()``).

    ``defer_after``: a wait longer than this raises ``RetryLater`` instead of
    sleeping, so a crawler can re-queue the request and free its worker.
    Time is read from ``clock`` and waited on with ``sleep``; tests inject both.
    Only idempotent methods are retried unless ``methods`` says otherwise.
    """

    def __init__(
        self,
        retries: int = 2,
        *,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_elapsed: float = 120.0,
        statuses: Collection[int] = DEFAULT_RETRY_STATUSES,
        exceptions: tuple[type[BaseException], ...] = (FetchTimeout, ConnectError),
        methods: Collection[str] = IDEMPOTENT_METHODS,
        defer_after: float | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be non-negative, got {retries!r}")
        self.retries = retries
        self.statuses = frozenset(statuses)
        self.exceptions = exceptions
        self.methods = frozenset(m.upper() for m in methods)
        self.max_backoff = max_backoff
        self.max_elapsed = max_elapsed
        self.defer_after = defer_after
        self._sleep = sleep
        self._clock = clock
        self._backoff = wait_exponential(multiplier=backoff, max=max_backoff) + wait_random(
            0, backoff
        )

    async def __call__(self, request: Request, call_next: Handler) -> Response:
        if self.retries == 0 or request.method not in self.methods:
            return await call_next(request)
        started = self._clock()
        # Most requests succeed at once: send the first attempt without tenacity's
        # machinery, and replay its outcome to tenacity only when it must be retried.
        first: Response | BaseException
        try:
            first = await call_next(request)
        except self.exceptions as exc:
            first = exc
        else:
            if not self._retryable(first):
                return first
        replay = [first]

        async def attempt(request: Request) -> Response:
            if replay:
                outcome = replay.pop()
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
            return await call_next(request)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1) | _OutOfTime(self, started),
            wait=functools.partial(self._wait, started),
            retry=retry_if_exception_type(self.exceptions) | retry_if_result(self._retryable),
            sleep=self._sleep,
            reraise=True,
            retry_error_callback=_last_outcome,
        )
        response: Response = await retrying(attempt, request)
        return response

    def _retryable(self, response: Response) -> bool:
        return response.status in self.statuses

    def _wait(self, started: float, state: RetryCallState) -> float:
        outcome = state.outcome
        response = None if outcome is None or outcome.failed else outcome.result()
        delay = self._backoff(state)
        if isinstance(response, Response):
            advised = parse_retry_after(response.headers.get("retry-after"), self._clock())
            if advised is not None:
                delay = advised
        delay = min(delay, self.max_backoff)
        will_retry = (
            state.attempt_number <= self.retries
            and self._clock() - started + delay <= self.max_elapsed
        )
        if will_retry and self.defer_after is not None and delay > self.defer_after:
            request = state.args[0] if state.args else None
            later = RetryLater(
                self._clock() + delay,
                request=request,
                response=response,
                reason=f"retry in {delay:.1f}s",
            )
            if outcome is not None and outcome.failed:
                later.__cause__ = outcome.exception()  # what to report if it never succeeds
            raise later
        return delay


class _OutOfTime(stop_base):
    """Stop when the next wait would end past ``max_elapsed`` on the injected clock
    (tenacity's own delay stops read the real clock, which tests cannot move)."""

    def __init__(self, retry: Retry, started: float) -> None:
        self.retry = retry
        self.started = started

    def __call__(self, state: RetryCallState) -> bool:
        elapsed = self.retry._clock() - self.started
        return elapsed + state.upcoming_sleep > self.retry.max_elapsed


def _last_outcome(state: RetryCallState) -> Response:
    """Out of retries: return the last response, or raise the last error."""
    assert state.outcome is not None
    response: Response = state.outcome.result()
    return response


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date).

    Invalid values are ignored (``None``); dates in the past mean "now" (0); a
    number of seconds past 2^31 (however many digits) means 2^31.
    """
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        digits = value.lstrip("0") or "0"  # int() refuses over 4300 digits: count them first
        return float(_DELTA_MAX if len(digits) > 10 else min(int(digits), _DELTA_MAX))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)
