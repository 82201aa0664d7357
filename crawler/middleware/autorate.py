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
  timeout or a connection error, or latency 1.3 times the host's own
  baseline: when the median of its last ten answers is that slow (one slow answer,
  a pause of the collector, is no trend), so a host that slows with load stays
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

import statistics
from collections import deque
from dataclasses import dataclass

__all__ = ["DEFAULT_AUTO", "FLOOR", "TUNING", "AutoOptions", "AutoRate"]

FLOOR = 0.1  # requests per second: one every 10 s at the slowest
DECREASE = 0.7
FAST, SLOW = 0.05, 0.01  # additive steps, shares of the rate last pushed back at, per second
NEAR = 0.9  # the share of that rate where fast gives way to slow
SMOOTHING = 0.2  # weight of a new gap between answers in its moving average
RECENT = 10  # answers whose median latency is the host's latency now
BASELINE_FOLLOW = 600.0  # seconds over which the baseline follows a lasting change
SLOWED_HOLD = 5.0  # seconds between decreases for latency: time for the baseline to follow
IDLE = 5.0  # seconds without answers that make the next gap no measure of the rate used
RESUMED = 1.05  # a resumed host's last limit, over its rate: it creeps, slowly, from there
GROWTH = 1.5  # the slow start's factor per second: at most half again what went through
USED = 2.0  # the rate grows to at most this many times the rate requests actually go at
MIN_STEP = 0.05  # requests per second, per second: the least an increase adds
HOLD = 1.0  # seconds after a decrease before another: the usual window of a server's limit
SLOWER = 1.3  # a median latency this many times the baseline is a push-back
SLACK = 0.005  # seconds a latency may exceed its baseline whatever the factor (timer noise)


# The constants above in the order the cluster's script takes them (crawl/cluster_rate.py).
TUNING = (FLOOR, DECREASE, FAST, SLOW, NEAR, GROWTH, USED, MIN_STEP, HOLD, RESUMED)


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
                 "latencies", "limit_seen", "rate", "slow_start", "slowed_at",
                 "start")  # fmt: skip

    def __init__(self, options: AutoOptions, now: float, rate: float | None = None) -> None:
        self.ceiling, self.start = options.ceiling, options.start
        self.rate = min(max(rate if rate is not None else options.start, FLOOR), self.ceiling)
        self.slow_start = rate is None
        # the rate at the last push-back; a resumed host creeps up from where it was
        self.limit_seen: float | None = None if rate is None else self.rate * RESUMED
        self.decreased_at = float("-inf")
        self.grown_at = now
        self.latencies: deque[float] = deque(maxlen=RECENT)  # of the last clean answers
        self.baseline: float | None = None  # their median when the host is at its fastest
        self.slowed_at = float("-inf")  # the last decrease for latency
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
        push-back: the median of its last ten answers (one fast robots.txt or one
        slow outlier moves no median) 1.3 times its baseline, the lowest such median,
        which follows a lasting change within minutes (a site that got slower for
        its own reasons is not held at the floor). At most one every ``SLOWED_HOLD``."""
        self.latencies.append(latency)
        since = now - self.answered_at if self.answered_at is not None else 0.0
        full = len(self.latencies) == RECENT
        typical = statistics.median(self.latencies)
        if not full:
            pass  # a median of a few says little, a baseline of one robots.txt less
        elif self.baseline is None or typical < self.baseline:
            self.baseline = typical
        else:
            self.baseline += (typical - self.baseline) * min(1.0, since / BASELINE_FOLLOW)
        if self.answered_at is not None:
            if since > IDLE:  # after an idle spell the gap says nothing of the rate used
                self.gap = None
            else:
                self.gap = since if self.gap is None else (
                    (1 - SMOOTHING) * self.gap + SMOOTHING * since)  # fmt: skip
        self.answered_at = now
        if self.baseline is None or now - self.slowed_at < SLOWED_HOLD:
            return False
        if typical > max(SLOWER * self.baseline, self.baseline + SLACK):
            self.slowed_at = now
            return True
        return False

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
