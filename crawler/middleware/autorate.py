"""``rate_limit.per_host = "auto"``: each host's request rate learned from its own
answers, as fast as it answers quickly and cleanly, and slower at once when it
pushes back, so the rate settles just under what the host allows.

It works as TCP's congestion control does:

- a slow start multiplies the rate by 1.5 every second until the host first pushes
  back;
- then additive increase: fast (5% of the rate it pushed back at, per second) below
  90% of that rate, slow (1%) above it, so it creeps up on the limit instead of
  running into it; past that rate unharmed, 5% of its own a second again;
- multiplicative decrease (x0.7 of what got through cleanly) on a 429 or 503, a
  timeout or a connection error, or latency one and a half times the host's own
  baseline: when even the fastest of its last ten answers is that slow (one slow
  answer, a pause of the collector, is no trend), so a host that slows with load stays
  within twice its unloaded latency; at most one decrease per ``HOLD`` (a second,
  the usual window of a server's limit), none for answers to requests sent before
  the last one.

Like TCP, it grows the rate only while the rate is what holds requests back, and to
at most twice the rate they go at: a crawl that finds links slowly proves nothing of
a faster rate. The rate stays between ``FLOOR`` and the ceiling (``max_per_host``).
The server's own limits (``Retry-After``, ``RateLimit`` headers, robots
``Crawl-delay``) are hard limits that ``RateLimit`` applies on top of this rate.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["DEFAULT_AUTO", "FLOOR", "TUNING", "AutoOptions", "AutoRate"]

FLOOR = 0.1  # requests per second: one every 10 s at the slowest
DECREASE = 0.7
FAST, SLOW = 0.05, 0.01  # additive steps, shares of the rate last pushed back at, per second
NEAR = 0.9  # the share of that rate where fast gives way to slow
SMOOTHING = 0.2  # weight of a new gap between answers in its moving average
RECENT = 10  # answers whose fastest latency is the host's latency now
GROWTH = 1.5  # the slow start's factor per second: at most half again what went through
USED = 2.0  # the rate grows to at most this many times the rate requests actually go at
MIN_STEP = 0.05  # requests per second, per second: the least an increase adds
HOLD = 1.0  # seconds after a decrease before another: the usual window of a server's limit
SLOWER = 1.5  # a latency this many times the baseline is a push-back
SLACK = 0.005  # seconds a latency may exceed its baseline whatever the factor (timer noise)


# The constants above in the order the cluster's script takes them (crawl/cluster_rate.py).
TUNING = (FLOOR, DECREASE, FAST, SLOW, NEAR, GROWTH, USED, MIN_STEP, HOLD)


@dataclass(frozen=True, slots=True)
class AutoOptions:
    """Where ``auto`` starts and the most it may reach, in requests per second."""

    start: float = 2.0
    ceiling: float = 20.0


DEFAULT_AUTO = AutoOptions()


class AutoRate:
    """One host's learned rate. ``now`` and ``started`` are times of the limiter's
    clock; ``rate``: where a resumed crawl left this host (no slow start then)."""

    __slots__ = ("answered_at", "baseline", "ceiling", "decreased_at", "gap", "grown_at",
                 "latencies", "limit_seen", "rate", "slow_start", "start")  # fmt: skip

    def __init__(self, options: AutoOptions, now: float, rate: float | None = None) -> None:
        self.ceiling, self.start = options.ceiling, options.start
        self.rate = min(max(rate if rate is not None else options.start, FLOOR), self.ceiling)
        self.slow_start = rate is None
        # the rate at the last push-back; a resumed host creeps up from where it was
        self.limit_seen: float | None = None if rate is None else self.rate
        self.decreased_at = float("-inf")
        self.grown_at = now
        self.latencies: deque[float] = deque(maxlen=RECENT)  # of the last clean answers
        self.baseline: float | None = None  # the lowest of their fastest seen
        self.answered_at: float | None = None
        self.gap: float | None = None  # smoothed seconds between answers: 1/gap is the rate used

    def answered(self, started: float, latency: float, now: float, *, paced: bool = True) -> None:
        """A clean answer (not 429 or 503) to a request sent at ``started``.
        ``paced``: requests to the host have had to wait for the rate lately; a
        rate nobody uses proves nothing, so only then does it grow."""
        if self.too_slow(latency, now):
            self.pushed_back(started, now)
            return
        elapsed, self.grown_at = now - self.grown_at, now
        if not paced:
            return
        if self.slow_start:
            self.rate *= GROWTH ** min(elapsed, 1.0)
        else:
            limit = self.limit_seen
            if limit is not None and self.rate >= limit:
                limit = self.limit_seen = None  # past the old limit unharmed: probe afresh
            if limit is None:
                step = FAST * self.rate
            else:
                step = (SLOW if self.rate >= NEAR * limit else FAST) * limit
            self.rate += max(step, MIN_STEP) * elapsed
        used = 1.0 / self.gap if self.gap else float("inf")
        self.rate = min(self.rate, self.ceiling, max(self.start, USED * used))

    def too_slow(self, latency: float, now: float) -> bool:
        """Note a clean answer's latency and time; whether the host's latency is a
        push-back (its last answers all 1.5 times its baseline, as this process
        measures them)."""
        self.latencies.append(latency)
        fastest = min(self.latencies)
        if self.baseline is None or fastest < self.baseline:
            self.baseline = fastest
        if self.answered_at is not None:
            gap = now - self.answered_at
            self.gap = gap if self.gap is None else (1 - SMOOTHING) * self.gap + SMOOTHING * gap
        self.answered_at = now
        full = len(self.latencies) == RECENT
        return full and fastest > max(SLOWER * self.baseline, self.baseline + SLACK)

    def pushed_back(self, started: float, now: float) -> None:
        """A 429 or 503, a timeout, a refused connection, or a slow answer."""
        if started <= self.decreased_at or now - self.decreased_at < HOLD:
            return  # the last decrease answered it, or has not had time to show
        # What got through, not what was asked: after a slow start's overshoot the
        # rate may be far above the host's limit, the clean answers' rate is not.
        self.limit_seen = min(self.rate, 1.0 / self.gap) if self.gap else self.rate
        self.rate = max(FLOOR, self.limit_seen * DECREASE)
        self.slow_start = False
        self.decreased_at = self.grown_at = now
