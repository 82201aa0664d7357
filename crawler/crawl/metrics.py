"""What a running crawl serves (``crawl CONFIG --serve HOST:PORT``): the counts it has
committed, its queue and requests in flight, and per host the requests sent, their
latency and the 429/503 answers that make it back off; ``/metrics`` in Prometheus's
text format, ``/status.json`` with the same figures.

Per-host figures are kept for at most ``TRACKED_HOSTS`` hosts (a broad crawl meets
millions; past that, new hosts count as ``other``) and shown for the
``NAMED_HOSTS`` busiest, the rest summed as ``other``: a scraper's label count
stays bounded whatever the crawl meets.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from crawler.crawl.stats import CrawlStats
from crawler.frontier import FrontierStats
from crawler.models import Handler, Request, Response
from crawler.urls import host_key

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from crawler.middleware import RateLimit

__all__ = ["NAMED_HOSTS", "TRACKED_HOSTS", "CrawlMetrics", "Histogram", "Live"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
NAMED_HOSTS = 10
TRACKED_HOSTS = 10_000
OTHER = "other"
RATE_WINDOW = 10  # seconds over which a host's request rate is measured
BACK_OFF = frozenset({429, 503})


class Histogram:
    """Counts in buckets, Prometheus's way: percentiles cannot be averaged, buckets add."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def add(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.sum += other.sum
        self.count += other.count

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative, ``+Inf`` last: what ``HistogramMetricFamily`` takes."""
        running, out = 0, []
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the ``q`` quantile; None when empty or
        above every bound (JSON has no infinity)."""
        if not self.count:
            return None
        rank, running = q * self.count, 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            if running >= rank:
                return bound
        return None


class _Host:
    __slots__ = ("backoffs", "latency", "recent", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.backoffs = 0  # 429 and 503 answers
        self.latency = Histogram()
        self.recent: deque[list[int]] = deque(maxlen=RATE_WINDOW)  # [second, requests]

    def add(self, other: _Host) -> None:
        self.requests += other.requests
        self.backoffs += other.backoffs
        self.latency.add(other.latency)

    def rate(self, now: float) -> float:
        second = int(now)
        return sum(n for at, n in self.recent if second - at < RATE_WINDOW) / RATE_WINDOW


class Live(Protocol):
    """What a run shows of itself (``Run``)."""

    stats: CrawlStats

    @property
    def in_flight(self) -> int: ...

    @property
    def commit_latency(self) -> Histogram: ...

    @property
    def limits(self) -> RateLimit: ...

    async def frontier_stats(self) -> FrontierStats: ...


class CrawlMetrics:
    """Attach to a crawl with ``Crawler(config, metrics=m)``; read with ``render()`` and
    ``status()`` while it runs (from its event loop)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hosts: dict[str, _Host] = {}
        self._other = _Host()  # hosts past TRACKED_HOSTS
        self._live: Live | None = None

    def attach(self, live: Live) -> None:
        self._live = live

    def observe(self, send: Handler) -> Handler:
        """``send`` (an engine's), recording each exchange's host, latency and status."""

        async def observed(request: Request) -> Response:
            started = self._clock()
            try:
                response = await send(request)
            except Exception:
                self._record(request.url, self._clock() - started, None)
                raise
            self._record(request.url, self._clock() - started, response.status)
            return response

        return observed

    def _record(self, url: str, seconds: float, status: int | None) -> None:
        try:
            key = host_key(url)
        except ValueError:
            key = "invalid"  # not "other": that label is the sum of the rest
        host = self._hosts.get(key)
        if host is None:
            host = self._other if len(self._hosts) >= TRACKED_HOSTS else _Host()
            if host is not self._other:
                self._hosts[key] = host
        host.requests += 1
        host.backoffs += status in BACK_OFF
        host.latency.observe(seconds)
        second = int(self._clock())
        if host.recent and host.recent[-1][0] == second:
            host.recent[-1][1] += 1
        else:
            host.recent.append([second, 1])

    def hosts(self) -> list[tuple[str, _Host]]:
        """The ``NAMED_HOSTS`` busiest by name, then the rest summed as ``other``."""
        ranked = sorted(self._hosts.items(), key=lambda item: -item[1].requests)
        named, rest = ranked[:NAMED_HOSTS], ranked[NAMED_HOSTS:]
        if not rest and not self._other.requests:
            return named
        other = _Host()
        for _, host in rest:
            other.add(host)
        other.add(self._other)
        return [*named, (OTHER, other)]

    async def status(self) -> dict[str, Any]:
        """The figures as one JSON object (``/status.json``)."""
        stats, frontier, in_flight, commits = await self._figures()
        now = self._clock()
        return {
            **stats.to_json(),
            "in_flight": in_flight,
            "frontier": {"seen": frontier.seen, "pending": frontier.pending,
                         "leased": frontier.leased, "done": frontier.done},
            "commit_seconds": {"count": commits.count, "sum": round(commits.sum, 6),
                               "p50": commits.quantile(0.5), "p99": commits.quantile(0.99)},
            "hosts": [{
                "host": name, "requests": host.requests, "backoffs": host.backoffs,
                "rate_per_s": host.rate(now) if name != OTHER else None,
                "latency_p50_s": host.latency.quantile(0.5),
                "latency_p90_s": host.latency.quantile(0.9),
            } for name, host in self.hosts()],
        }  # fmt: skip

    async def render(self) -> str:
        """The figures in Prometheus's text format (``/metrics``), from a registry of
        their own: the process's default metrics stay out."""
        # Imported here: every crawl keeps a Histogram of its commits, few serve them.
        from prometheus_client import CollectorRegistry, generate_latest

        stats, frontier, in_flight, commits = await self._figures()
        registry = CollectorRegistry()
        rates = self._live.limits.rates() if self._live is not None else {}
        registry.register(_Collector(list(_families(stats, frontier, in_flight, commits,
                                                    self.hosts(), rates))))  # fmt: skip
        return generate_latest(registry).decode()

    async def _figures(self) -> tuple[CrawlStats, FrontierStats, int, Histogram]:
        live = self._live
        if live is None:
            return CrawlStats(), FrontierStats(), 0, Histogram()
        return live.stats, await live.frontier_stats(), live.in_flight, live.commit_latency


class _Collector:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


def _counter(name: str, doc: str, value: float) -> Metric:
    from prometheus_client.metrics_core import CounterMetricFamily

    return CounterMetricFamily(name, doc, value=value)


def _labelled(name: str, doc: str, label: str, counts: dict[Any, int]) -> Metric:
    from prometheus_client.metrics_core import CounterMetricFamily

    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(counts.items(), key=lambda item: str(item[0])):
        family.add_metric([str(key)], value)
    return family


def _families(
    stats: CrawlStats, frontier: FrontierStats, in_flight: int, commits: Histogram,
    hosts: list[tuple[str, _Host]], rates: Mapping[str, float],
) -> Iterator[Metric]:  # fmt: skip
    from prometheus_client.metrics_core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    yield _counter("crawl_pages", "Responses committed (pages of any status)", stats.pages)
    yield _counter("crawl_items", "Items written", stats.items)
    yield _counter("crawl_response_bytes", "Body bytes of the responses", stats.bytes)
    yield _counter("crawl_rendered_pages", "Pages rendered in the headless browser",
                   stats.rendered)  # fmt: skip
    yield _labelled("crawl_responses", "Responses by status", "status", dict(stats.statuses))
    yield _labelled("crawl_errors", "Error records by kind", "kind", dict(stats.errors))
    yield _labelled("crawl_dropped", "Requests dropped by policy, by reason", "reason",
                    dict(stats.dropped))  # fmt: skip
    yield GaugeMetricFamily("crawl_queue_length", "Requests waiting in the frontier",
                            value=frontier.pending)  # fmt: skip
    yield GaugeMetricFamily("crawl_leased_requests", "Requests leased, not yet done",
                            value=frontier.leased)  # fmt: skip
    yield GaugeMetricFamily("crawl_seen_urls", "URLs the frontier has accepted",
                            value=frontier.seen)  # fmt: skip
    yield GaugeMetricFamily("crawl_in_flight_requests", "Requests being fetched now",
                            value=in_flight)  # fmt: skip
    commit = HistogramMetricFamily("crawl_commit_duration_seconds",
                                   "Time one commit took (write, fsync, frontier)")  # fmt: skip
    commit.add_metric([], commits.buckets(), sum_value=commits.sum)
    yield commit
    host = ["host"]
    requests = CounterMetricFamily("crawl_host_requests", "Exchanges sent, by host:port",
                                   labels=host)  # fmt: skip
    backoffs = CounterMetricFamily("crawl_host_backoffs", "429 and 503 answers, by host:port",
                                   labels=host)  # fmt: skip
    latency = HistogramMetricFamily("crawl_host_request_duration_seconds",
                                    "Time one exchange took, by host:port",
                                    labels=host)  # fmt: skip
    paced = GaugeMetricFamily("crawl_host_rate_limit",
                              'Requests per second a host at "auto" is paced at, as learned '
                              '(host="other": the sum of the rest)', labels=host)  # fmt: skip
    named = {name for name, _ in hosts}
    for name, traffic in hosts:
        requests.add_metric([name], traffic.requests)
        backoffs.add_metric([name], traffic.backoffs)
        latency.add_metric([name], traffic.latency.buckets(), sum_value=traffic.latency.sum)
        if name in rates:
            paced.add_metric([name], rates[name])
    if OTHER in named and (rest := [r for h, r in rates.items() if h not in named]):
        paced.add_metric([OTHER], sum(rest))
    yield from (requests, backoffs, latency, paced)
