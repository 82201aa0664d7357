"""Run health checks: every target fetched concurrently through the Fetcher
(so engines, timeouts and retries behave as everywhere else), its conditions
evaluated, and its certificate read when it asks for ``cert_min_days``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from yarl import URL

from crawler.errors import ConnectError, ErrorRecord, FetchError
from crawler.fetcher import Fetcher
from crawler.health.certs import Certificate, read_certificate
from crawler.health.conditions import evaluate
from crawler.health.result import Failure, HealthResult
from crawler.health.targets import Target
from crawler.policy import HEALTH, FetchPolicy

__all__ = ["DEFAULT_CONCURRENCY", "check_one", "check_targets"]

DEFAULT_CONCURRENCY = HEALTH.concurrency


async def check_targets(
    targets: Sequence[Target],
    *,
    engine: str = "aiohttp",
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[HealthResult]:
    """Check every target once, all at the same time, and return the results in
    the targets' order. Never raises for what a server does."""
    # Checks wait here, before their clock starts, never in a queue inside the fetcher:
    # a check's latency and timeout are its own exchange's, however many targets there are.
    slots = asyncio.Semaphore(concurrency)
    async with contextlib.AsyncExitStack() as stack:
        # One Fetcher per distinct policy: a Fetcher fixes its settings for all its requests.
        fetchers: dict[FetchPolicy, Fetcher] = {}
        policies = [target.policy(engine=engine, concurrency=concurrency) for target in targets]
        for policy in policies:
            if policy not in fetchers:
                fetchers[policy] = await stack.enter_async_context(Fetcher.of(policy))

        async def run(target: Target, fetcher: Fetcher) -> HealthResult:
            try:
                async with slots:
                    return await check_one(fetcher, target)
            except Exception as exc:  # a bug must not take the other checks (or a monitor) down
                return HealthResult(
                    target.name, target.url, ok=False, checked_at=time.time(), latency=0.0,
                    error="internal", message=f"{type(exc).__name__}: {exc}",
                )  # fmt: skip

        return await asyncio.gather(
            *(
                run(target, fetchers[policy])
                for target, policy in zip(targets, policies, strict=True)
            )
        )


async def check_one(fetcher: Fetcher, target: Target) -> HealthResult:
    """Fetch one target and judge it; a failed fetch is a failed check."""
    checked_at = time.time()
    started = time.monotonic()
    request = fetcher.request(
        target.method, target.url, headers=target.request_headers, timeout=target.timeout
    )
    cert_task = (
        None if target.cert_min_days is None else asyncio.ensure_future(_certificate(target))
    )
    try:
        response = await fetcher.fetch(request)
    except asyncio.CancelledError:
        if cert_task is not None:
            cert_task.cancel()
        raise
    except FetchError as exc:
        latency = time.monotonic() - started
        cert, cert_failures = await _certificate_failures(target, cert_task, fetch_failed=exc)
        record = ErrorRecord.of(exc, url=target.url)
        return HealthResult(
            target.name, target.url, ok=False, checked_at=checked_at, latency=latency,
            error=record.kind, message=record.message,
            failures=(Failure.no_response(record.kind), *cert_failures),
            cert_days=cert.days_left if cert else None,
            cert_expires=cert.not_after.timestamp() if cert else None,
        )  # fmt: skip
    latency = time.monotonic() - started
    failures = await asyncio.to_thread(evaluate, target, response, latency)
    cert, cert_failures = await _certificate_failures(target, cert_task, fetch_failed=None)
    failures += cert_failures
    return HealthResult(
        target.name, target.url, ok=not failures, checked_at=checked_at, latency=latency,
        status=response.status, size=len(response.body), final_url=response.url,
        failures=tuple(failures), cert_days=cert.days_left if cert else None,
        cert_expires=cert.not_after.timestamp() if cert else None,
    )  # fmt: skip


async def _certificate(target: Target) -> Certificate:
    url = URL(target.url)
    return await read_certificate(
        url.host or "", url.port or 443, timeout=target.timeout, verify=target.verify_tls
    )


async def _certificate_failures(
    target: Target,
    task: asyncio.Future[Certificate] | None,
    *,
    fetch_failed: FetchError | None,
) -> tuple[Certificate | None, list[Failure]]:
    """The certificate (when it could be read) and what is wrong with it. When
    the fetch already failed on TLS, its error carries the verification reason."""
    if task is None or target.cert_min_days is None:  # (both or neither)
        return None, []
    try:
        cert = await task
    except FetchError as exc:
        if fetch_failed is not None:  # the fetch's own error says it already
            return None, []
        unread = f"could not read it ({exc})"
        return None, [Failure("cert_min_days", "a readable certificate", unread, phrase=True)]
    failures = []
    if cert.days_left < target.cert_min_days:
        wanted = f"at least {target.cert_min_days:g} days left"
        if cert.days_left < 0:
            expired = f"it expired {-cert.days_left:.1f} days ago"
            failures.append(Failure("cert_min_days", wanted, expired, phrase=True))
        else:
            failures.append(Failure("cert_min_days", wanted, f"{cert.days_left:.1f} days left"))
    tls_failed = isinstance(fetch_failed, ConnectError) and fetch_failed.kind == "tls"
    if cert.verify_error and not tls_failed:
        refused = f"it does not ({cert.verify_error})"
        failures.append(Failure("cert", "a certificate that verifies", refused, phrase=True))
    return cert, failures
