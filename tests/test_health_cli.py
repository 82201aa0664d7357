"""`crawl ping` and `crawl check` as users run them: output formats that parse,
and exit codes 0 (all healthy), 1 (any not) and 2 (usage)."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from junitparser import JUnitXml
from prometheus_client.parser import text_string_to_metric_families

from crawler.cli import main
from tests.server import LoopbackServer


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ping_prints_a_table_and_exits_0_when_all_answer(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer
) -> None:
    urls = [server.url("/ok"), server.url("/redirect/1")]
    code, out, _ = run(capsys, "ping", *urls)
    assert code == 0
    assert all(url in out for url in urls)
    assert out.count("OK") == 2
    assert server.url("/ok") in out.split(urls[1], 1)[1]  # the final URL after the redirect
    assert "2 checked, 0 failed" in out


def test_ping_exits_1_and_says_why_when_any_fails(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, closed_port: int
) -> None:
    dead = f"http://127.0.0.1:{closed_port}/"
    code, out, _ = run(capsys, "ping", server.url("/ok"), server.url("/status/503"), dead,
                       server.url("/hang-before-headers"), "--timeout", "0.5")  # fmt: skip
    assert code == 1
    assert "FAIL status: expected 2xx or 3xx, saw 503" in out
    assert "FAIL refused" in out
    assert "FAIL timeout" in out
    assert "4 checked, 3 failed" in out


@pytest.mark.parametrize("engine", ["aiohttp", "threads", "futures"])
def test_ping_json_prints_one_object_per_url(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, engine: str
) -> None:
    urls = [server.url("/ok"), server.url("/status/404")]
    code, out, _ = run(capsys, "ping", *urls, "--json", "--engine", engine)
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [(r["url"], r["ok"], r["status"]) for r in records] == [
        (urls[0], True, 200), (urls[1], False, 404),
    ]  # fmt: skip


def test_ping_reads_urls_from_stdin_and_files(server: LoopbackServer, tmp_path: Path) -> None:
    listed = tmp_path / "urls.txt"
    listed.write_text(f"# health\n{server.url('/ok?from=file')}\n\n")
    done = subprocess.run(
        [sys.executable, "-m", "crawler", "ping", "-", "--from", str(listed), "--json"],
        input=server.url("/ok?from=stdin") + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    urls = [json.loads(line)["url"] for line in done.stdout.splitlines()]
    assert urls == [server.url("/ok?from=stdin"), server.url("/ok?from=file")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ping"], "no URLs to ping"),
        (["ping", "ftp://example.org/"], "not an http:// or https:// URL: 'ftp://example.org/'"),
        (["ping", "file:/etc/passwd"], "not an http:// or https:// URL: 'file:/etc/passwd'"),
        (["ping", "--from", "missing-file.txt"], "--from missing-file.txt"),
        (["check"], "give a health-check file or --crawl CONFIG"),
        (["check", "h.toml", "--serve", "127.0.0.1:9108"], "--serve needs --watch"),
        (["check", "h.toml", "--watch", "5", "--format", "junit"], "--watch prints table or json"),
        (["check", "h.toml", "--watch", "5", "--serve", "nohost"], "--serve expects HOST:PORT"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err


def test_ping_assumes_http_without_a_scheme(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path
) -> None:
    listed = tmp_path / "urls.txt"
    listed.write_text(f"127.0.0.1:{server.port}/ok?from=file\n")
    code, out, err = run(capsys, "ping", f"127.0.0.1:{server.port}/ok", "--from", str(listed),
                         "--json")  # fmt: skip
    assert code == 0, err
    urls = [json.loads(line)["url"] for line in out.splitlines()]
    assert urls == [server.url("/ok"), server.url("/ok?from=file")]


def test_a_bad_url_in_a_file_names_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    listed = tmp_path / "urls.txt"
    listed.write_text("http://127.0.0.1/\nnot a url\n")
    code, _, err = run(capsys, "ping", "--from", str(listed))
    assert code == 2
    assert f"(line 2 of {listed})" in err


def test_argument_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["ping", "http://127.0.0.1/", "--timeout", "-1"])
    assert caught.value.code == 2


def health_file(tmp_path: Path, server: LoopbackServer, closed_port: int) -> Path:
    path = tmp_path / "health.toml"
    path.write_text(f"""
title = "Loopback"

[defaults]
timeout = 2

[[target]]
name = "home"
url = "{server.url("/ok")}"
body_contains = "ok"
max_latency_ms = 5000

[[target]]
name = "api"
url = "{server.url("/json")}"
json = {{ "status" = "ok" }}

[[target]]
name = "broken"
url = "{server.url("/status/500")}"
status = "2xx"

[[target]]
name = "down"
url = "http://127.0.0.1:{closed_port}/"
""")
    return path


def test_check_table_exits_1_naming_each_failure(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path, closed_port: int
) -> None:
    code, out, _ = run(capsys, "check", str(health_file(tmp_path, server, closed_port)))
    assert code == 1
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "OK" in rows["home"]
    assert "OK" in rows["api"]
    assert "FAIL status: expected 2xx, saw 500" in rows["broken"]
    assert "FAIL refused" in rows["down"]


def test_check_exits_0_when_every_target_passes(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path
) -> None:
    path = tmp_path / "health.toml"
    path.write_text(f'[[target]]\nurl = "{server.url("/ok")}"\nbody_contains = "ok"\n')
    assert run(capsys, "check", str(path))[0] == 0


def test_check_junit_parses_with_a_failure_per_failed_target(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path, closed_port: int
) -> None:
    path = health_file(tmp_path, server, closed_port)
    code, out, _ = run(capsys, "check", str(path), "--format", "junit")
    assert code == 1
    (suite,) = JUnitXml.fromstring(out.encode())
    assert (suite.tests, suite.failures) == (4, 2)
    failed = {case.name: case.result[0].message for case in suite if case.result}
    assert failed.keys() == {"broken", "down"}
    assert "expected 2xx, saw 500" in failed["broken"]


def samples(exposition: str, name: str) -> dict[str, float]:
    """The values of one metric by target, parsed as Prometheus would."""
    return {
        sample.labels["target"]: sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }


def test_check_prometheus_parses(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path, closed_port: int
) -> None:
    path = health_file(tmp_path, server, closed_port)
    code, out, _ = run(capsys, "check", str(path), "--format", "prometheus")
    assert code == 1
    up = samples(out, "crawl_check_up")
    assert up == {"home": 1.0, "api": 1.0, "broken": 0.0, "down": 0.0}


def test_check_json_and_cli_overrides(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path
) -> None:
    path = tmp_path / "health.toml"
    path.write_text(
        f'[defaults]\ntimeout = 30\n[[target]]\nurl = "{server.url("/slow?delay=2")}"\n'
    )
    code, out, _ = run(capsys, "check", str(path), "--format", "json", "--timeout", "0.3")
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert record["error"] == "timeout"


@pytest.mark.parametrize(
    ("text", "expected", "shown"),
    [
        ('url = "http://127.0.0.1/"\nstatus = "2xy"\n',
         'crawl: target[0].status: expected a status code', '"2xy"'),
        # a misspelt key is named, not the key it leaves missing
        ('urll = "http://127.0.0.1/"\n',
         "crawl: target[0].urll: unknown key (expected one of: name, url, method, ", "url"),
    ],
)  # fmt: skip
def test_a_bad_health_file_exits_2_naming_the_key(
    text: str, expected: str, shown: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "health.toml"
    path.write_text("[[target]]\n" + text)
    code, _, err = run(capsys, "check", str(path))
    assert code == 2
    assert err.startswith(expected)
    assert shown in err
    assert "null" not in err


def test_watch_serves_metrics_and_stops_cleanly_on_sigterm(
    server: LoopbackServer, tmp_path: Path, closed_port: int
) -> None:
    path = health_file(tmp_path, server, closed_port)
    # Down only after a thousand failures in a row: pending for this whole test.
    path.write_text(
        path.read_text()
        + f"""
[[target]]
name = "patient"
url = "http://127.0.0.1:{closed_port}/"
failures = 1000
"""
    )
    watcher = subprocess.Popen(
        [sys.executable, "-m", "crawler", "check", str(path), "--watch", "0.2",
         "--serve", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert watcher.stdout is not None
    assert watcher.stderr is not None
    printed: queue.Queue[str] = queue.Queue()  # the watcher's stdout, line by line
    reader = threading.Thread(target=lambda: [printed.put(line) for line in watcher.stdout])
    reader.start()
    out: list[str] = []
    try:
        announced = watcher.stderr.readline()
        url = announced.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:"), announced
        while sum(" up, " in line for line in out) < 3:  # one summary line per run
            out.append(printed.get(timeout=30))
        # A run is recorded before it is printed: /metrics counts all three by now.
        with urllib.request.urlopen(url + "metrics", timeout=5) as response:
            runs = samples(response.read().decode(), "crawl_check_runs_total")
        assert runs.keys() == {"home", "api", "broken", "down", "patient"}
        assert min(runs.values()) >= 3
        with urllib.request.urlopen(url + "status.json", timeout=5) as response:
            states = {t["name"]: t["state"] for t in json.loads(response.read())["targets"]}
        assert states == {"home": "up", "api": "up", "broken": "down", "down": "down",
                          "patient": "pending"}  # fmt: skip
        with urllib.request.urlopen(url, timeout=5) as response:
            page = response.read().decode()
        assert 'data-target="broken"' in page
        assert "Loopback" in page
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=30)
        reader.join(timeout=30)
        watcher.stdout.close()
        watcher.stderr.close()
    assert watcher.returncode == 0
    assert "2 up, 3 down" in "".join(out)  # the checks of a run, whatever the states


def test_serving_on_a_taken_address_exits_2(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path, closed_port: int
) -> None:
    path = health_file(tmp_path, server, closed_port)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(
            capsys, "check", str(path), "--watch", "1", "--serve", f"127.0.0.1:{port}"
        )
    assert code == 2
    assert f"--serve 127.0.0.1:{port}: Address already in use" in err
