"""The monitor's history file: a year of checks on a fake clock rolls into a bounded
file whose SLA report adds up; a restart resumes state, samples and incidents; a
second monitor, a foreign file and a full disk each get a clear message."""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.errors import AlreadyRunning
from crawler.health.history import History
from crawler.health.result import Failure, HealthResult
from crawler.health.sla import SlaRow, render_sla_json, render_sla_table, sla_report
from crawler.health.store import DAY, HOUR, LATENCY_BOUNDS, HistoryStore, StoreError
from crawler.health.targets import Target
from crawler.health.uptime import Uptime

START = datetime(2025, 11, 1, tzinfo=UTC).timestamp()
STEP = 900.0  # a check every 15 minutes
YEAR = 400 * DAY
TARGETS = (
    Target("home", "http://home.test/", slo=99.9),
    Target("api", "http://api.test/", failures=2, slo=99.5),
    Target("gone", "http://gone.test/"),  # removed from the file after 100 days
)
LATENCY = {"home": 0.05, "api": 0.2, "gone": 0.1}


def outage(now: float) -> bool:
    """api fails from 10:00 to 11:59 on day 390, and from 03:00 to 03:44 on day 395
    (inside a maintenance window, so it counts for nothing)."""
    day, into = divmod(now - START, DAY)
    return (day == 390 and 10 * HOUR <= into < 12 * HOUR) or (
        day == 395 and 3 * HOUR <= into < 3.75 * HOUR
    )


def in_window(name: str, now: float) -> bool:
    day, into = divmod(now - START, DAY)
    return name == "api" and day == 395 and 3 * HOUR <= into < 4 * HOUR


@dataclass
class Monitor:
    """What ``crawl check --watch`` does with each run, on a fake clock."""

    store: HistoryStore
    history: History = field(default_factory=lambda: History(size=8))

    def __post_init__(self) -> None:
        for target in TARGETS:
            self.history.expect(target.name, target.url, failures=target.failures)
        self.store.restore(self.history)

    def run(self, now: float, names: tuple[str, ...] = ("home", "api")) -> bool:
        results = [check(name, now, ok=not (name == "api" and outage(now))) for name in names]
        changes = self.history.record(results, lambda name: in_window(name, now))
        return self.store.record(results, changes, self.history,
                                 quiet=lambda name: in_window(name, now), now=now)  # fmt: skip


def check(name: str, now: float, *, ok: bool = True) -> HealthResult:
    if ok:
        return HealthResult(name, f"http://{name}.test/", True, now, LATENCY[name], status=200)
    return HealthResult(name, f"http://{name}.test/", False, now, 2.0, status=503,
                        failures=(Failure("status", "2xx", "503"),))  # fmt: skip


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A store after 400 days of checks every 15 minutes (read, never written, by
    the tests that share it); and the time of its last check."""
    path = tmp_path_factory.mktemp("year") / "health.sqlite3"
    now = START
    with HistoryStore(path) as store:
        monitor = Monitor(store)
        while now < START + YEAR:
            names = ("home", "api", "gone") if now < START + 100 * DAY else ("home", "api")
            assert monitor.run(now, names)
            now += STEP
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path, now - STEP


def checks_between(since: float, end: float) -> int:
    """The checks of the fixture's clock from ``since`` to ``end``, both included."""
    return int((end - START) // STEP - math.ceil((since - START) / STEP) + 1)


def count(db: sqlite3.Connection, sql: str, *args: object) -> int:
    return int(db.execute(sql, args).fetchone()[0])


def test_a_year_of_checks_keeps_each_resolution_only_as_long_as_it_is_useful(
    year: tuple[Path, float],
) -> None:
    path, end = year
    size = os.path.getsize(path)
    print(f"400 days of 2 targets every 15 min (and a third for 100 days): {size:,} bytes")
    db = sqlite3.connect(path)
    per_day = DAY / STEP
    # Every check of the last 48 hours, per target (pruned hourly, so up to an hour
    # more); nothing of the removed target.
    kept = count(db, "SELECT count(*) FROM checks WHERE target='home'")
    assert 2 * per_day <= kept <= 2 * per_day + HOUR / STEP
    assert count(db, "SELECT min(at) FROM checks") >= end - 2 * DAY - HOUR
    assert count(db, "SELECT count(*) FROM checks WHERE target='gone'") == 0
    # Hourly roll-ups for 30 days (and the hour in progress), daily ones for 400.
    assert count(db, "SELECT count(*) FROM rollups WHERE target='home' AND span=?", HOUR) == 721
    assert count(db, "SELECT count(*) FROM rollups WHERE target='home' AND span=?", DAY) == 400
    assert count(db, "SELECT count(*) FROM rollups WHERE target='gone' AND span=?", HOUR) == 0
    assert count(db, "SELECT count(*) FROM rollups WHERE target='gone' AND span=?", DAY) == 100
    # Roll-ups add up to the checks they stand for.
    assert count(db, "SELECT sum(checks) FROM rollups WHERE target='home' AND span=?",
                 DAY) == 400 * per_day  # fmt: skip
    # Per target, a year costs what its roll-ups and two days of checks do: bounded.
    assert size < 400_000


def test_the_sla_report_adds_up_from_the_roll_ups(year: tuple[Path, float]) -> None:
    path, end = year
    now = end + 60
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    report = sla_report(Uptime(db), TARGETS, period=30 * DAY, now=now)
    # Past 48 h, whole hours: from the start of the hour that holds now - 30 d.
    assert report.since == (now - 30 * DAY) // HOUR * HOUR
    rows = {row.target: row for row in report.rows}
    home, api, gone = rows["home"], rows["api"], rows["gone"]
    checks = checks_between(report.since, end)
    assert (home.checks, home.failures, home.uptime, home.met) == (checks, 0, 1.0, True)
    # 8 failed checks on day 390; the 3 in the maintenance window on day 395 not counted.
    assert api.checks == checks - 4
    assert api.failures == 8
    assert api.uptime == pytest.approx(1 - 8 / (checks - 4))
    assert api.met is True
    assert api.budget_left == pytest.approx(1 - 8 / ((checks - 4) * 0.005))
    # DOWN from the second failed check (10:15, failures = 2) to the first pass (12:00).
    (incident,) = api.incidents
    assert incident.started == START + 390 * DAY + 10.25 * HOUR
    assert incident.ended == START + 390 * DAY + 12 * HOUR
    assert api.downtime == 1.75 * HOUR
    assert "status: expected 2xx, saw 503" in incident.reason
    # Percentiles from the latency buckets: the bucket's upper bound, at most 19% above.
    assert 0.05 <= home.latency["p50"] <= 0.05 * 2**0.25
    assert 0.2 <= api.latency["p50"] <= 0.2 * 2**0.25
    # The 8 slow failures are 0.28% of the checks: past the 99th percentile.
    assert api.latency["p99"] == api.latency["p50"]
    assert (gone.checks, gone.uptime, gone.met) == (0, None, None)
    # Beyond 30 days the daily roll-ups answer, to the start of the file's 400 days.
    long = {row.target: row for row in sla_report(Uptime(db), TARGETS, period=YEAR,
                                                   now=now).rows}  # fmt: skip
    assert long["home"].checks == 400 * DAY / STEP
    assert long["gone"].checks == 100 * DAY / STEP
    table, document = io.StringIO(), io.StringIO()
    render_sla_table(report, table)
    render_sla_json(report, document)
    print(table.getvalue())
    cells = [[cell.strip() for cell in line.strip("\u2502").split("\u2502")]
             for line in table.getvalue().splitlines() if line.startswith("\u2502")]  # fmt: skip
    uptime, budget = 100 * (1 - 8 / (checks - 4)), 100 * (1 - 8 / ((checks - 4) * 0.005))
    assert cells[1][:6] == ["api", f"{uptime:.3f}%", "99.5%", f"{budget:.1f}%", "1", "1.8 h"]
    assert cells[2][:3] == ["gone", "\u2013", "\u2013"]
    assert "SLA over 30 d: 2026-11-05 23:00 UTC to 2026-12-05 23:46 UTC" in table.getvalue()
    parsed = json.loads(document.getvalue())
    assert (parsed["from"], parsed["to"]) == (report.since, now)
    assert [t["target"] for t in parsed["targets"]] == ["home", "api", "gone"]
    assert parsed["targets"][1]["incidents"][0]["ended"] == incident.ended


def test_the_page_windows_and_days_come_from_the_roll_ups(year: tuple[Path, float]) -> None:
    path, end = year
    db = sqlite3.connect(path)
    uptime = Uptime(db)
    windows = uptime.windows(["home", "api", "gone"], end)
    assert windows["home"] == {"24h": 1.0, "7d": 1.0, "30d": 1.0, "90d": 1.0}
    assert windows["api"]["24h"] == 1.0  # day 399
    since = (end - 30 * DAY) // HOUR * HOUR
    assert windows["api"]["30d"] == pytest.approx(1 - 8 / (checks_between(since, end) - 4))
    _, day = uptime.totals(["home"], end, DAY)  # each check, exactly 24 h back
    assert day["home"].checks == DAY / STEP
    assert windows["gone"] == dict.fromkeys(("24h", "7d", "30d", "90d"))
    days = uptime.days(["api"], end)["api"]
    assert len(days) == 90
    by_day = {round((day.start - START) / DAY): day.state for day in days}
    assert by_day[390] == "down"
    assert by_day[395] == "up"  # its failures were inside the window
    assert {by_day[n] for n in range(310, 400) if n not in (390,)} == {"up"}


def test_a_restart_resumes_state_samples_counters_and_the_open_incident(tmp_path: Path) -> None:
    path = tmp_path / "health.sqlite3"
    day_390 = START + 390 * DAY
    with HistoryStore(path) as store:
        first = Monitor(store)
        for n in range(40, 44):  # 10:00 .. 10:45: DOWN at 10:15
            first.run(day_390 + n * STEP)
    api_before = first.history.targets()[1]
    assert api_before.state == "down"
    with HistoryStore(path) as store:
        second = Monitor(store)
        api = second.history.targets()[1]
        assert (api.state, api.since, api.runs, api.failures) == ("down", day_390 + 10.25 * HOUR,
                                                                  4, 4)  # fmt: skip
        assert [r.checked_at for r in api.samples] == [r.checked_at for r in api_before.samples]
        assert api.samples[-1].failures == (Failure("status", "2xx", "503"),)
        assert api.samples[-1].reason == api_before.samples[-1].reason
        for n in range(44, 49):  # still down until 12:00, then UP
            second.run(day_390 + n * STEP)
        (incident,) = Uptime(store.db).incidents(["api"], since=START)
    assert (incident.started, incident.ended) == (day_390 + 10.25 * HOUR, day_390 + 12 * HOUR)


def test_a_second_monitor_of_the_same_file_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "health.sqlite3"
    with HistoryStore(path) as store:
        Monitor(store).run(START)
        before = path.read_bytes()
        with pytest.raises(AlreadyRunning, match=r"health\.sqlite3 is in use by another monitor"):
            HistoryStore(path).open()
        assert path.read_bytes() == before


def test_a_file_that_is_no_history_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE pages (url TEXT)").connection.commit()
    with pytest.raises(StoreError, match=r"state\.sqlite3 is not a history file"):
        HistoryStore(path).open()
    (tmp_path / "notes.txt").write_text("not a database at all, " * 100)
    with pytest.raises(StoreError, match=r"notes\.txt"):
        HistoryStore(tmp_path / "notes.txt").open()
    with pytest.raises(StoreError, match="cannot keep the history in"):
        HistoryStore(tmp_path / "missing" / "h.sqlite3").open()


def test_a_full_disk_loses_no_state_change_and_is_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "health.sqlite3"
    day_390 = START + 390 * DAY
    with HistoryStore(path) as store:
        monitor = Monitor(store)
        monitor.run(day_390)
        pages = count(store.db, "PRAGMA page_count")
        store.db.execute(f"PRAGMA max_page_count={pages}")  # the disk fills up
        filling = 0
        while monitor.run(day_390 + 60 + filling):  # the pages' free space, then no more
            filling += 1
            assert filling < 10_000
        saved = [monitor.run(day_390 + n * STEP) for n in range(40, 60)]
        assert not any(saved)
        store.db.execute("PRAGMA max_page_count=1000000")  # space again
        assert monitor.run(day_390 + 60 * STEP)
        (incident,) = Uptime(store.db).incidents(["api"], since=START)
        # Every check of the failed writes is counted in the day's roll-up.
        day = count(store.db, "SELECT checks FROM rollups WHERE target='api' AND span=?"
                    " AND start=?", DAY, day_390)  # fmt: skip
        failed = count(store.db, "SELECT failures FROM rollups WHERE target='api' AND span=?"
                       " AND start=?", DAY, day_390)  # fmt: skip
        assert (day, failed) == (1 + filling + 1 + 20 + 1, 8)
    err = capsys.readouterr().err
    assert err.count("history not saved to") == 1
    assert "database or disk is full" in err
    assert err.count("history saved to") == 1
    # DOWN at 10:15 and UP at 12:00 happened while nothing could be written: both kept.
    assert (incident.started, incident.ended) == (day_390 + 10.25 * HOUR, day_390 + 12 * HOUR)


def test_latency_buckets_are_fine_enough_for_percentiles() -> None:
    ratios = [b / a for a, b in itertools.pairwise(LATENCY_BOUNDS)]
    assert max(ratios) < 1.2
    assert LATENCY_BOUNDS[0] <= 0.001
    assert LATENCY_BOUNDS[-1] >= 120


def test_a_row_without_objective_has_no_budget() -> None:
    row = SlaRow("x", "http://x/", None, 10, 1, (), 0.0, {})
    assert (row.uptime, row.met, row.budget_left) == (0.9, None, None)


def test_a_target_gone_or_moved_ends_its_open_incident_at_its_last_check(
    tmp_path: Path,
) -> None:
    path = tmp_path / "health.sqlite3"
    day_390 = START + 390 * DAY
    with HistoryStore(path) as store:
        monitor = Monitor(store)
        for n in range(40, 44):  # api DOWN at 10:15, last checked at 10:45
            monitor.run(day_390 + n * STEP)
    history = History()
    history.expect("home", "http://home.test/")
    history.expect("api", "http://api.example/v2/health")  # the same name at a new URL
    with HistoryStore(path) as store:
        store.restore(history)
        api = history.targets()[1]
        assert (api.state, api.runs, len(api.samples)) == ("pending", 0, 0)
        (incident,) = Uptime(store.db).incidents(["api"], since=START)
    assert incident.ended == day_390 + 43 * STEP
