"""Middleware composition: ``(request, call_next) -> response``, in list order, and
the chain a fetch policy asks for.

The first middleware in the list is the outermost: it sees the request first
and the response last, like aiohttp's client middlewares.
"""

from __future__ import annotations

from collections.abc import Sequence

from crawler.middleware.autorate import AutoOptions
from crawler.middleware.cache import HttpCache
from crawler.middleware.concurrency import Concurrency
from crawler.middleware.ratelimit import RateLimit, SharedLimits
from crawler.middleware.redirects import FollowRedirects
from crawler.middleware.retry import Retry
from crawler.middleware.timeout import Timeout
from crawler.models import Handler, Middleware, Request, Response
from crawler.policy import FetchPolicy

__all__ = ["Handler", "Middleware", "compose", "http_cache", "policy_chain", "rate_limit"]


def compose(middlewares: Sequence[Middleware], handler: Handler) -> Handler:
    """Fold ``middlewares`` around ``handler``; ``compose([a, b], h)(r)`` runs a → b → h."""
    for middleware in reversed(middlewares):
        handler = _bind(middleware, handler)
    return handler


def _bind(middleware: Middleware, call_next: Handler) -> Handler:
    async def handle(request: Request) -> Response:
        return await middleware(request, call_next)

    return handle


def rate_limit(policy: FetchPolicy, shared: SharedLimits | None = None) -> RateLimit:
    """The per-host limits ``policy`` sets, for this process or, with ``shared``,
    for every worker of a crawl."""
    auto = AutoOptions(start=float(policy.rate_limit_start), ceiling=float(policy.rate_limit_max))
    return RateLimit(
        policy.rate_limit,
        hosts=dict(policy.rate_limit_hosts),
        auto=auto,
        per_host_concurrency=policy.per_host_concurrency,
        max_backoff=policy.max_backoff,
        shared=shared,
    )


def http_cache(policy: FetchPolicy) -> HttpCache | None:
    """The cache ``policy`` keeps, not yet open; None when it keeps none."""
    return None if policy.cache is None else HttpCache(policy.cache)


def policy_chain(
    policy: FetchPolicy,
    send: Handler,
    *,
    outer: Sequence[Middleware] = (),
    limits: RateLimit | None = None,
    defer_after: float | None = None,
    cache: HttpCache | None = None,
) -> Handler:
    """``send`` wrapped in the middleware ``policy`` asks for, the one chain of every
    fetch, embedded or crawling::

        FollowRedirects ▶ outer ▶ policy.middleware ▶ HttpCache ▶ Retry ▶ RateLimit
            ▶ Concurrency ▶ Timeout

    ``FollowRedirects`` only when the policy follows redirects, ``Retry`` only when
    it retries. ``outer`` is the caller's own policy (a crawl's ``Robots``);
    ``limits`` replaces the policy's rate limit when others share it (``Robots``
    sets a host's ``Crawl-delay`` there); with ``defer_after``, a retry that
    would wait longer raises ``RetryLater`` instead of sleeping. Requests past
    the policy's ``concurrency`` wait in ``Concurrency``, before their timeout
    starts. ``cache`` is the ``HttpCache`` a policy with ``cache`` set needs, made
    by ``http_cache(policy)`` and opened and closed by the caller (it holds a file):
    it sees each redirect hop once, and a revalidation only after its retries.
    """
    if (cache is None) != (policy.cache is None):
        raise ValueError("policy_chain: pass cache=http_cache(policy), open, exactly when "
                         f"the policy keeps a cache (policy.cache={policy.cache!r})")  # fmt: skip
    chain: list[Middleware] = []
    if policy.follow_redirects:
        chain.append(FollowRedirects(policy.max_redirects))
    chain += [*outer, *policy.middleware]
    if cache is not None:
        chain.append(cache)
    if policy.retries:
        chain.append(Retry(
            policy.retries, backoff=policy.backoff, max_backoff=policy.max_backoff,
            statuses=policy.retry_statuses, defer_after=defer_after,
        ))  # fmt: skip
    chain += [
        limits if limits is not None else rate_limit(policy),
        Concurrency(policy.concurrency),
        Timeout(policy.timeouts),
    ]
    return compose(chain, send)
