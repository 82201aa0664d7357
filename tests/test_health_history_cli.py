"""``crawl check --watch`` with its history file, as users run it: stopped and started
again, it continues the history, the uptime and the open incident; ``--report``
reads the file; a second monitor of the same file is refused."""

from __future__ import annotations

import json
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from crawler.cli import main
from tests.server import LoopbackServer


class Watcher:
    """``crawl check FILE --watch 0.2 --serve 127.0.0.1:0`` in a process of its own."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.lines: queue.Queue[str] = queue.Queue()  # stdout, a summary line per run

    def __enter__(self) -> Watcher:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crawler", "check", *self.args, "--watch", "0.2",
             "--serve", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        out = self.process.stdout
        self.reader = threading.Thread(target=lambda: [self.lines.put(line) for line in out])
        self.reader.start()
        announced = self.process.stderr.readline()
        self.url = announced.rsplit(" ", 1)[-1].strip()
        assert self.url.startswith("http://127.0.0.1:"), announced
        return self

    def runs(self, count: int) -> None:
        seen = 0
        while seen < count:
            seen += " up, " in self.lines.get(timeout=30)

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "status.json", timeout=10) as response:
            found: dict[str, Any] = json.loads(response.read())
        return found

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.reader.join(timeout=30)
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self.process.stdout.close()
        self.process.stderr.close()


def by_name(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {target["name"]: target for target in status["targets"]}


@pytest.fixture
def health(tmp_path: Path, server: LoopbackServer, closed_port: int) -> Path:
    path = tmp_path / "health.toml"
    path.write_text(f"""
[defaults]
slo = 99.0

[[target]]
name = "home"
url = "{server.url("/ok")}"

[[target]]
name = "down"
url = "http://127.0.0.1:{closed_port}/"
failures = 2
""")
    return path


def test_a_restarted_watch_continues_its_history_uptime_and_incident(
    health: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Watcher(str(health)) as first:
        first.runs(3)
        before = first.status()
        refused = subprocess.run(
            [sys.executable, "-m", "crawler", "check", str(health), "--watch", "1"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert refused.returncode == 1
    assert "health.sqlite3 is in use by another monitor (pid " in refused.stderr
    (incident,) = before["incidents"]
    assert incident["target"] == "down"
    assert incident["ended"] is None
    runs = by_name(before)["down"]["runs"]
    assert (health.parent / "health.sqlite3").is_file()  # beside the health file, by default

    with Watcher(str(health)) as second:
        restored = by_name(second.status())  # at start: no check needed to know the state
        assert restored["down"]["state"] == "down"
        assert restored["down"]["runs"] >= runs
        second.runs(2)
        after = second.status()
    targets = by_name(after)
    assert targets["down"]["runs"] >= runs + 2
    assert len(targets["down"]["samples"]) >= runs + 2  # the first process's checks too
    (again,) = after["incidents"]  # the same incident, still open, longer
    assert again == incident | {"duration_s": again["duration_s"]}
    assert again["duration_s"] > incident["duration_s"]
    assert targets["down"]["uptimes"]["24h"] == 0.0
    assert targets["home"]["uptimes"] == {"24h": 1.0, "7d": 1.0, "30d": 1.0, "90d": 1.0}
    assert targets["home"]["days"][-1]["state"] == "up"
    assert targets["down"]["days"][-1]["state"] == "down"

    code = main(["check", str(health), "--report", "7d"])
    out = capsys.readouterr().out
    assert code == 1  # "down" is below its objective
    assert "1 below objective: down" in out
    code = main(["check", str(health), "--report", "7d", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    home, down = report["targets"]
    assert (home["target"], home["met"], home["uptime"], home["slo"]) == ("home", True, 1.0, 99.0)
    assert (down["met"], down["uptime"], down["checks"]) == (False, 0.0, down["failures"])
    assert down["checks"] >= runs + 2
    assert [i["started"] for i in down["incidents"]] == [incident["started"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--report", "7d", "--watch", "1"], "--report reads the history of a health-check file"),
        (["--report", "7d", "--format", "junit"], "--report prints table or json"),
        (["--store", "x.sqlite3"], "--store is for --watch and --report"),
        (["--report", "7d", "--retain", "90d"], "--retain is for --watch"),
        (["--watch", "1", "--retain", "7d"], "--retain keeps daily uptime at least as long as"),
        (["--watch", "1", "--no-store", "--retain", "30d"], "--no-store keeps no history"),
    ],
)
def test_history_options_that_cannot_work_exit_2(
    health: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["check", str(health), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_report_without_history_says_where_it_looked(
    health: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(health), "--report", "30d"]) == 1
    err = capsys.readouterr().err
    assert f"no history at {health.parent / 'health.sqlite3'}" in err
    assert not (health.parent / "health.sqlite3").exists()  # a reader creates nothing
    empty = health.parent / "empty.sqlite3"
    sqlite3.connect(empty).close()
    empty.write_bytes(b"")
    assert main(["check", str(health), "--report", "30d", "--store", str(empty)]) == 1
    assert "empty.sqlite3 is not a history file" in capsys.readouterr().err


def test_a_bad_report_period_names_the_form(health: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "crawler", "check", str(health), "--report",
                           "a month"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert 'expected a duration such as "30d" or "12h", got \'a month\'' in done.stderr
