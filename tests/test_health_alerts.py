"""Alerts of watch mode: one message per change of state, sent through Apprise to a
loopback receiver; reminders on a fake clock; a dead receiver retried and counted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from crawler.errors import ConfigError
from crawler.health.alerts import ATTEMPTS, Alert, Alerter, parse_alerts
from crawler.health.history import History
from crawler.health.report import render_prometheus
from crawler.health.result import Failure, HealthResult
from crawler.health.store import HistoryStore
from crawler.health.targets import Target
from crawler.health.watch import watch
from tests.fakes import FakeTime
from tests.server import LoopbackServer


class Receiver(LoopbackServer):
    """Takes JSON webhooks at ``/hook``, and serves ``/health``: 200 while ``healthy``."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self.healthy = True

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/hook":
            self.received.append(await request.json())
            return web.Response(text="ok")
        if request.path == "/health":
            return web.Response(status=200 if self.healthy else 503, text="health")
        raise web.HTTPNotFound()

    def hook(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        return [(m["title"], json.loads(m["message"])) for m in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def result(ok: bool, at: float) -> HealthResult:
    failures = () if ok else (Failure("status", "2xx", "503"),)
    return HealthResult("api", "http://api.test/health", ok, at, 0.1, status=200 if ok else 503,
                        failures=failures)  # fmt: skip


def feed(history: History, alerter: Alerter, marks: str, start: float) -> float:
    """One check per mark (``+`` passed, ``-`` failed), a minute apart; the next time."""
    for n, mark in enumerate(marks):
        now = start + 60 * n
        alerter.changed(history.record([result(mark == "+", now)]), now)
    return start + 60 * len(marks)


async def test_one_message_per_change_of_state_and_a_reminder_while_down(
    receiver: Receiver,
) -> None:
    history = History()
    history.expect("api", "http://api.test/health", failures=3, successes=2)
    alerter = Alerter([Alert("team", (receiver.hook(),), repeat=3600.0)])
    # up from the start (nothing), a flap of two failures (nothing), then three: down
    now = feed(history, alerter, "+--+---", start=1000.0)
    await alerter.aclose()
    assert [title for title, _ in receiver.messages()] == ["api is DOWN"]
    _, body = receiver.messages()[0]
    assert body["target"] == "api"
    assert body["url"] == "http://api.test/health"
    assert body["state"] == "DOWN"
    assert body["reason"] == "status: expected 2xx, saw 503"
    assert body["since"] == "1970-01-01T00:22:40+00:00"  # 1,360 s: the third failure in a row
    assert [check["ok"] for check in body["checks"]] == [False, True, False, False, False]

    down_at = 1000.0 + 60 * 6
    alerter.remind(down_at + 1800)  # not yet
    alerter.remind(down_at + 3600)
    await alerter.aclose()
    assert [title for title, _ in receiver.messages()] == ["api is DOWN", "api is DOWN"]
    assert receiver.messages()[1][1]["reminder"] is True

    feed(history, alerter, "++", start=now)
    alerter.remind(now + 7200)  # up: no reminder
    await alerter.aclose()
    assert [title for title, _ in receiver.messages()][2:] == ["api is UP"]
    assert alerter.counts() == {("team", "sent"): 3, ("team", "failed"): 0}


async def test_an_alert_covers_only_its_targets(receiver: Receiver) -> None:
    history = History()
    alerter = Alerter([Alert("db-team", (receiver.hook(),), targets=frozenset({"db"}))])
    feed(history, alerter, "+-+", start=1000.0)
    await alerter.aclose()
    assert receiver.received == []


async def test_a_dead_receiver_is_retried_counted_and_never_stops_the_checks(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeTime()
    history = History()
    alerter = Alerter([Alert("team", (f"json://127.0.0.1:{closed_port}/hook",))],
                      sleep=clock.sleep)  # fmt: skip
    feed(history, alerter, "+-", start=1000.0)  # returns at once: sending is in the background
    await alerter.aclose()
    assert clock.sleeps == [1, 2, 4][: ATTEMPTS - 1]
    assert alerter.counts() == {("team", "sent"): 0, ("team", "failed"): 1}
    err = capsys.readouterr().err
    assert f"crawl: alert team: json://127.0.0.1:{closed_port}/hook did not take" in err
    text = render_prometheus(history, notifications=alerter.counts())
    families = {f.name: f for f in text_string_to_metric_families(text)}
    values = {s.labels["result"]: s.value for s in families["crawl_check_notifications"].samples}
    assert values == {"failed": 1.0, "sent": 0.0}


async def test_watch_sends_down_after_failures_and_up_after_successes(
    receiver: Receiver,
) -> None:
    """The target's server answers 200, then 503 three times, then 200: with
    failures = 3 and successes = 2, exactly one DOWN and one UP reach the receiver."""
    target = replace(Target("api", receiver.url("/health")), failures=3, successes=2)
    history = History()
    history.expect("api", target.url, failures=3, successes=2)
    alerter = Alerter([Alert("team", (receiver.hook(),))])
    plan = [True, False, False, False, True, True]  # the server's health before each run
    receiver.healthy = plan[0]
    stop, runs = asyncio.Event(), []

    def after(results: list[HealthResult]) -> None:
        runs.append(results[0].ok)
        if len(runs) == len(plan):
            stop.set()
        else:
            receiver.healthy = plan[len(runs)]

    await watch([target], interval=0, history=history, stop=stop, on_run=after,
                alerter=alerter)  # fmt: skip
    await alerter.aclose()
    assert runs == plan
    assert [title for title, _ in receiver.messages()] == ["api is DOWN", "api is UP"]


def test_alert_tables_are_checked_and_fill_variables_from_the_environment() -> None:
    environ = {"HOOK": "127.0.0.1:9/hook"}
    (alert,) = parse_alerts([{"name": "team", "to": ["json://${HOOK}"], "targets": ["api"],
                              "repeat": "1h"}], ["api"], environ)  # fmt: skip
    assert alert == Alert("team", ("json://127.0.0.1:9/hook",), frozenset({"api"}), 3600.0)
    bad = [
        ([{"name": "t", "to": ["json://${MISSING}"]}], "alert[0].to[0]: the environment has no MISSING"),
        ([{"name": "t", "to": ["nonsense"]}], "alert[0].to[0]: expected a notification URL Apprise knows"),
        ([{"name": "t", "to": []}], "alert[0].to: expected at least one notification URL"),
        ([{"name": "t", "to": ["json://h/"], "targets": ["apii"]}], 'alert[0].targets: expected the name of a [[target]], got "apii"'),
        ([{"name": "t", "to": ["json://h/"], "repeat": "soon"}], "alert[0].repeat: expected"),
        ([{"to": ["json://h/"]}], "alert[0].name: expected name (required)"),
        ([{"name": "t", "to": ["json://h/"], "every": "1h"}], "alert[0].every: expected a key of [[alert]]"),
    ]  # fmt: skip
    for tables, message in bad:
        with pytest.raises(ConfigError) as caught:
            parse_alerts(tables, ["api"], environ)
        assert str(caught.value).startswith(message), str(caught.value)


def test_test_alerts_sends_one_message_and_exits_0_or_1(
    receiver: Receiver, tmp_path: Path, closed_port: int
) -> None:
    def run(hooks: list[str]) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "health.toml"
        path.write_text(f'[[target]]\nurl = "{receiver.url("/health")}"\n\n[[alert]]\n'
                        f'name = "team"\nto = {json.dumps(hooks)}\n', encoding="utf-8")  # fmt: skip
        return subprocess.run([sys.executable, "-m", "crawler", "check", str(path),
                               "--test-alerts"], capture_output=True, text=True, timeout=120,
                              check=False)  # fmt: skip

    sent = run([receiver.hook()])
    assert sent.returncode == 0, sent.stderr
    assert [m["title"] for m in receiver.received] == ["crawl check: test message"]
    assert receiver.hits_for("/health") == 0  # a test of the alerts, not of the targets
    failed = run([receiver.hook(), f"json://127.0.0.1:{closed_port}/hook"])
    assert failed.returncode == 1
    assert "did not take the message" in failed.stderr


async def test_each_alert_reminds_on_its_own_clock(receiver: Receiver) -> None:
    history = History()
    fast, slow = Alert("fast", (receiver.hook(),), repeat=60.0), Alert(
        "slow", (receiver.hook(),), repeat=300.0)  # fmt: skip
    alerter = Alerter([fast, slow])
    feed(history, alerter, "-", start=0.0)  # down at 0: two messages, one per alert
    for minute in range(1, 11):
        alerter.remind(60.0 * minute)
    await alerter.aclose()
    assert alerter.counts() == {("fast", "sent"): 11, ("fast", "failed"): 0,
                                ("slow", "sent"): 3, ("slow", "failed"): 0}  # fmt: skip


async def test_a_notifier_that_raises_counts_as_failed(
    receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeTime()
    alerter = Alerter([Alert("team", (receiver.hook(),))], sleep=clock.sleep)
    (notifier,) = alerter.notifiers["team"]

    async def broken(**message: str) -> bool:
        raise RuntimeError("a plugin's own bug")

    notifier._sender.async_notify = broken
    assert await alerter.test() is False
    assert alerter.counts()[("team", "failed")] == 1
    assert "a plugin's own bug" in capsys.readouterr().err


async def test_a_restart_sends_no_second_down_but_reminds_and_sends_up(
    receiver: Receiver, tmp_path: Path
) -> None:
    alert = Alert("team", (receiver.hook(),), repeat=3600.0)
    path = tmp_path / "health.sqlite3"
    for marks, start in (("+-", 0.0), ("--", 600.0)):  # down at 60; restarted at 600
        history = History()
        history.expect("api", "http://api.test/health")
        with HistoryStore(path) as store:
            store.restore(history)
            alerter = Alerter([alert])
            alerter.resume(history.targets(), start)
            for n, mark in enumerate(marks):
                now = start + 60 * n
                results = [result(mark == "+", now)]
                changes = history.record(results)
                store.record(results, changes, history, quiet=lambda name: False, now=now)
                alerter.changed(changes, now)
                alerter.remind(now)
        await alerter.aclose()
    alerter.remind(600 + 3599)  # an hour after the restart, not after the DOWN
    await alerter.aclose()
    assert [title for title, _ in receiver.messages()] == ["api is DOWN"]
    alerter.remind(600 + 3600)
    await alerter.aclose()  # sent one after the other, so they arrive in order
    alerter.changed(history.record([result(True, 4300.0)]), 4300.0)
    await alerter.aclose()
    assert [title for title, _ in receiver.messages()] == ["api is DOWN"] * 2 + ["api is UP"]
    assert receiver.messages()[1][1]["reminder"] is True
