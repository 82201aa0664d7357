"""Maintenance windows of watch mode: ``[[maintenance]]`` tables, once (``start`` and
``duration``) or recurring (``cron``, ``duration``, ``timezone``). Inside one, a
target's checks still run and are shown, its state reads ``maintenance``, nothing
is sent and its checks do not count against its uptime."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from crawler.errors import ConfigError
from crawler.health._tables import tables_of, target_names
from crawler.policy.checks import positive, string

__all__ = ["Window", "in_maintenance", "parse_maintenance"]

_KEYS = ("targets", "start", "duration", "cron", "timezone")


@dataclass(frozen=True, slots=True)
class Window:
    duration: float  # seconds
    targets: frozenset[str] | None = None  # None: every target
    start: float | None = None  # once: a Unix time
    cron: str | None = None  # or every time this cron expression fires, in ``zone``
    zone: tzinfo = UTC

    def covers(self, target: str, now: float) -> bool:
        if self.targets is not None and target not in self.targets:
            return False
        if self.start is not None:
            return self.start <= now < self.start + self.duration
        assert self.cron is not None
        # The last firing at or before now (get_prev is strictly before its start),
        # from a moment made from the timestamp, so the repeated hour of a clock change
        # keeps its fold.
        moment = datetime.fromtimestamp(now + 1, self.zone)
        began = croniter(self.cron, moment).get_prev(datetime)
        return now < began.timestamp() + self.duration


def in_maintenance(windows: Sequence[Window], target: str, now: float) -> bool:
    return any(window.covers(target, now) for window in windows)


def _fires(cron: str) -> bool:
    """Whether ``cron`` fires at all: ``0 0 31 2 *`` (31 February) is valid, never."""
    try:
        croniter(cron, datetime.now(UTC)).get_next(datetime)
        croniter(cron, datetime.now(UTC)).get_prev(datetime)
    except (CroniterBadDateError, ValueError):
        return False
    return True


def parse_maintenance(tables: Any, targets: Iterable[str]) -> tuple[Window, ...]:
    """The ``[[maintenance]]`` tables of a health file; ``ConfigError`` names the key."""
    known = set(targets)
    return tuple(_window(key, table, known) for key, table in tables_of("maintenance", tables,
                                                                         _KEYS))  # fmt: skip


def _window(key: str, table: Mapping[str, Any], known: set[str]) -> Window:
    if ("start" in table) == ("cron" in table):
        raise ConfigError(key, dict(table), "start (once) or cron (recurring), one of them")
    if "duration" not in table:
        raise ConfigError(f"{key}.duration", None, 'a duration such as "2h" (required)')
    duration = positive(f"{key}.duration", table["duration"])
    chosen = None
    if "targets" in table:
        chosen = target_names(f"{key}.targets", table["targets"], known)
    if "start" in table:
        if "timezone" in table:
            raise ConfigError(f"{key}.timezone", table["timezone"],
                              "no timezone with start (its offset says it)")  # fmt: skip
        start = table["start"]
        if isinstance(start, str):  # quoted, it is the same date and time
            with contextlib.suppress(ValueError):
                start = datetime.fromisoformat(start)
        if not isinstance(start, datetime) or start.tzinfo is None:
            expected = "a date and time with its offset, 2026-12-24T22:00:00+01:00"
            raise ConfigError(f"{key}.start", start, expected)
        return Window(duration, chosen, start=start.timestamp())
    cron = string(f"{key}.cron", table["cron"])
    if not croniter.is_valid(cron) or not _fires(cron):
        raise ConfigError(
            f"{key}.cron", cron, 'a cron expression that fires, such as "0 3 * * SUN"'
        )
    zone: tzinfo = UTC
    if "timezone" in table:
        name = string(f"{key}.timezone", table["timezone"])
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{key}.timezone", name, "an IANA time zone such as "
                              "Europe/Berlin") from None  # fmt: skip
    return Window(duration, chosen, cron=cron, zone=zone)
