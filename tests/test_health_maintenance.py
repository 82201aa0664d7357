"""Maintenance windows: once and cron forms on a fake clock; inside one, checks are
kept and shown, but change no state, send nothing and do not count against uptime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from crawler.errors import ConfigError
from crawler.health.alerts import Alert, Alerter
from crawler.health.history import History
from crawler.health.maintenance import in_maintenance, parse_maintenance
from crawler.health.page import status_json
from crawler.health.report import render_prometheus
from tests.test_health_alerts import Receiver, result
from tests.test_health_report import scrape

CET = timezone(timedelta(hours=1))


def at(*fields: int, zone: Any = UTC) -> float:
    return datetime(*fields, tzinfo=zone).timestamp()


def test_a_window_once_covers_its_targets_from_start_for_its_duration() -> None:
    start = datetime(2026, 12, 24, 22, 0, tzinfo=CET)
    windows = parse_maintenance([{"targets": ["api"], "start": start, "duration": "2h"}],
                                ["api", "home"])  # fmt: skip
    assert not in_maintenance(windows, "api", at(2026, 12, 24, 21, 59, 59, zone=CET))
    assert in_maintenance(windows, "api", at(2026, 12, 24, 22, 0, zone=CET))
    assert in_maintenance(windows, "api", at(2026, 12, 24, 23, 59, 59, zone=CET))
    assert not in_maintenance(windows, "api", at(2026, 12, 25, 0, 0, zone=CET))
    assert not in_maintenance(windows, "home", at(2026, 12, 24, 23, 0, zone=CET))
    quoted = parse_maintenance([{"start": "2026-12-24T22:00:00+01:00", "duration": "2h"}], [])
    assert quoted[0].start == start.timestamp()


def test_a_cron_window_recurs_in_its_time_zone_across_daylight_saving() -> None:
    windows = parse_maintenance([{"cron": "0 3 * * SUN", "duration": "30m",
                                  "timezone": "Europe/Berlin"}], ["api"])  # fmt: skip
    # Sunday 6 December 2026, 03:00 in Berlin is 02:00 UTC (CET)
    assert in_maintenance(windows, "api", at(2026, 12, 6, 2, 0))
    assert in_maintenance(windows, "api", at(2026, 12, 6, 2, 29))
    assert not in_maintenance(windows, "api", at(2026, 12, 6, 2, 30))
    assert not in_maintenance(windows, "api", at(2026, 12, 6, 1, 59))
    assert not in_maintenance(windows, "api", at(2026, 12, 7, 2, 10))  # a Monday
    # Sunday 5 July 2026, 03:00 in Berlin is 01:00 UTC (CEST)
    assert in_maintenance(windows, "api", at(2026, 7, 5, 1, 10))
    assert not in_maintenance(windows, "api", at(2026, 7, 5, 2, 10))


def test_a_cron_window_holds_through_the_repeated_hour_of_autumn() -> None:
    windows = parse_maintenance([{"cron": "30 2 * * *", "duration": "1h",
                                  "timezone": "Europe/Berlin"}], ["api"])  # fmt: skip
    # 25 October 2026: 02:30 CEST (00:30 UTC) starts it; the clock then falls back, and
    # 02:00-02:29 CET (01:00-01:29 UTC) is still inside the hour that began at 00:30 UTC.
    assert in_maintenance(windows, "api", at(2026, 10, 25, 0, 30))
    assert in_maintenance(windows, "api", at(2026, 10, 25, 1, 15))
    assert in_maintenance(windows, "api", at(2026, 10, 25, 1, 29))


class Minutes:
    """``api`` checked once a minute from ``START`` (check n at START + 60 n), with a
    window from minute 2 lasting ``window``, alerts to ``receiver`` every minute."""

    START = 1_000_000.0

    def __init__(self, receiver: Receiver, window: str, successes: int = 1) -> None:
        when = datetime.fromtimestamp(self.START + 120, UTC)
        self.windows = parse_maintenance([{"start": when, "duration": window}], ["api"])
        self.history = History()
        self.history.expect("api", "http://api.test/health", successes=successes)
        self.alerter = Alerter([Alert("team", (receiver.hook(),), repeat=60.0)])

    def check(self, n: int, ok: bool) -> str:
        """Check n; the state shown after it."""
        now = self.START + 60 * n

        def quiet(name: str) -> bool:
            return in_maintenance(self.windows, name, now)

        self.alerter.changed(self.history.record([result(ok, now)], quiet), now)
        self.alerter.remind(now, quiet)
        return self.history.targets()[0].shown


async def test_inside_a_window_nothing_is_sent_and_uptime_leaves_it_out() -> None:
    with Receiver() as receiver:
        watch = Minutes(receiver, "5m")
        start, history, alerter, check = watch.START, watch.history, watch.alerter, watch.check

        assert [check(0, True), check(1, True)] == ["up", "up"]
        # the window: minutes 2 to 6; the target fails throughout, and after it
        assert [check(n, False) for n in range(2, 7)] == ["maintenance"] * 5
        (api,) = history.targets()
        assert api.uptime() == 1.0  # two passes counted, five checks in the window not
        assert status_json(history, interval=60, now=start + 360)["targets"][0]["state"] == (
            "maintenance"
        )
        assert scrape(history)["crawl_check_maintenance"] == {"api": 1.0}
        await alerter.aclose()
        assert receiver.received == []  # entering, staying in, leaving: nothing

        assert check(7, False) == "down"  # the first failure after the window counts
        check(8, False)  # a reminder, a minute later
        await alerter.aclose()
        assert [m["title"] for m in receiver.received] == ["api is DOWN", "api is DOWN"]
        assert "crawl_check_maintenance" in render_prometheus(history)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"duration": "1h"}, "maintenance[0]: expected start (once) or cron (recurring)"),
        ({"start": datetime(2026, 1, 1, 3, 0), "duration": "1h"}, "maintenance[0].start: expected a date and time with its offset"),
        ({"start": "2026-01-01T03:00:00", "duration": "1h"}, "maintenance[0].start: expected a date and time with its offset"),
        ({"start": "Christmas", "duration": "1h"}, "maintenance[0].start: expected a date and time with its offset"),
        ({"cron": "0 3 * *", "duration": "1h"}, "maintenance[0].cron: expected a cron expression"),
        ({"cron": "0 0 31 2 *", "duration": "1h"}, "maintenance[0].cron: expected a cron expression that fires"),
        ({"cron": "0 3 * * SUN", "duration": "1h", "timezone": "Mars/Olympus"}, "maintenance[0].timezone: expected an IANA time zone"),
        ({"cron": "0 3 * * SUN"}, "maintenance[0].duration: expected a duration"),
        ({"cron": "0 3 * * SUN", "duration": "1h", "targets": ["apii"]}, "maintenance[0].targets: expected the name of a [[target]]"),
        ({"cron": "0 3 * * SUN", "duration": "1h", "every": 2}, "maintenance[0].every: expected a key of [[maintenance]]"),
    ],
)  # fmt: skip
def test_bad_windows_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_maintenance([table], ["api"])
    assert str(caught.value).startswith(message), str(caught.value)


async def test_a_target_that_recovers_inside_a_window_is_not_reminded_on_leaving_it() -> None:
    with Receiver() as receiver:
        watch = Minutes(receiver, "10m", successes=2)
        for n, ok in enumerate([False, False] + [True] * 10 + [True, True]):
            watch.check(n, ok)
        await watch.alerter.aclose()
        # DOWN, one reminder before the window, then UP two passes after it (sent in
        # the background, so they may arrive in any order)
        titles = sorted(m["title"] for m in receiver.received)
        assert titles == ["api is DOWN", "api is DOWN", "api is UP"]
