"""Health reports as their readers see them: a person at a table, a script reading
JSON lines, a CI server reading JUnit XML and Prometheus scraping the text format."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from junitparser import Failure as JUnitFailure
from junitparser import JUnitXml, TestCase
from prometheus_client.parser import text_string_to_metric_families

from crawler.health.history import History
from crawler.health.report import render_json, render_junit, render_prometheus, render_table
from crawler.health.result import Failure, HealthResult
from tests.promtool import assert_promtool_accepts

CHECKED_AT = datetime(2024, 5, 1, 12, 30, 15, 250_000, tzinfo=UTC).timestamp()

PASSED = HealthResult(
    "home", "https://example.test/", True, CHECKED_AT, 0.1234, status=200, size=5120,
    cert_days=29.987654, cert_expires=CHECKED_AT + 29.987654 * 86400,
)  # fmt: skip
SLOW = HealthResult(
    "api", "https://example.test/api", False, CHECKED_AT, 2.5, status=503, size=12,
    failures=(
        Failure("status", "200", "503"),
        Failure("max_latency_ms", "1000", "2500"),
        Failure("cert_min_days", "14", "3.2"),
    ),
)  # fmt: skip
TIMEOUT = HealthResult(
    "slow", "https://slow.example.test/", False, CHECKED_AT, 10.0, error="timeout",
    message="read timed out", failures=(Failure("fetch", "a response", "timeout"),),
)  # fmt: skip
MOVED = HealthResult(
    "old", "http://old.example.test/", True, CHECKED_AT, 0.2, status=200, size=0,
    final_url="https://new.example.test/landing",
)  # fmt: skip
HOSTILE = HealthResult(
    'naïve "quoted"\nname ☕', "https://example.test/évil?a=1&b=<2>", False, CHECKED_AT, 0.05,
    error="protocol", message='bad <&"> \x00\x1b[31mred\x7f\x0c',
    failures=(Failure("fetch", "a response", "protocol"),),
)  # fmt: skip
RESULTS = [PASSED, SLOW, TIMEOUT, MOVED, HOSTILE]


def scrape(history: History) -> dict[str, dict[str, float]]:
    """Sample values by sample name (``name[quantile]`` for quantiles), then target,
    checking on the way that every sample names its target's URL."""
    urls = {target.name: target.url for target in history.targets()}
    samples: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(render_prometheus(history)):
        assert family.documentation
        for sample in family.samples:
            labels = dict(sample.labels)
            target = labels.pop("target")
            assert labels.pop("url") == urls[target]
            key = f"{sample.name}[{labels.pop('quantile')}]" if labels else sample.name
            samples.setdefault(key, {})[target] = sample.value
    return samples


def test_prometheus_families_are_named_and_typed() -> None:
    text = render_prometheus(History.of(RESULTS))
    assert {f.name: f.type for f in text_string_to_metric_families(text)} == {
        "crawl_check_up": "gauge",
        "crawl_check_down": "gauge",
        "crawl_check_maintenance": "gauge",
        "crawl_check_status_code": "gauge",
        "crawl_check_latency_seconds": "gauge",
        "crawl_check_response_size_bytes": "gauge",
        "crawl_check_cert_expiry_timestamp_seconds": "gauge",
        "crawl_check_failed_conditions": "gauge",
        "crawl_check_runs": "counter",
        "crawl_check_failures": "counter",
        "crawl_check_uptime_ratio": "gauge",
        "crawl_check_recent_latency_seconds": "summary",
    }


def test_promtool_accepts_every_family() -> None:
    history = History(size=10)
    for _ in range(3):
        history.record(RESULTS)
    assert_promtool_accepts(
        render_prometheus(history, notifications={("team", "sent"): 2, ("team", "failed"): 1})
    )


def test_prometheus_gauges_describe_the_last_check() -> None:
    samples = scrape(History.of(RESULTS))
    hostile = HOSTILE.name  # quotes, a newline and non-ASCII survive as a label value
    assert samples["crawl_check_up"] == {"home": 1, "api": 0, "slow": 0, "old": 1, hostile: 0}
    # No response, no status sample: a 0 would read as a real status.
    assert samples["crawl_check_status_code"] == {"home": 200, "api": 503, "old": 200}
    assert samples["crawl_check_latency_seconds"] == {
        "home": 0.1234, "api": 2.5, "slow": 10.0, "old": 0.2, hostile: 0.05,
    }  # fmt: skip
    assert samples["crawl_check_response_size_bytes"] == {"home": 5120, "api": 12, "old": 0}
    # In base units, as blackbox_exporter's probe_ssl_earliest_cert_expiry: alert rules
    # written for it (expiry - time() < 14 * 86400) carry over.
    assert samples["crawl_check_cert_expiry_timestamp_seconds"] == {
        "home": pytest.approx(datetime(2024, 5, 31, 12, 12, 28, 555_600, tzinfo=UTC).timestamp())
    }
    assert samples["crawl_check_failed_conditions"] == {
        "home": 0, "api": 3, "slow": 1, "old": 0, hostile: 1,
    }  # fmt: skip
    assert samples["crawl_check_runs_total"] == dict.fromkeys(samples["crawl_check_up"], 1)
    # Targets that never got a response have no latency to rank.
    assert set(samples["crawl_check_recent_latency_seconds[0.5]"]) == {"home", "api", "old"}


def test_prometheus_counters_and_quantiles_come_from_the_history() -> None:
    history = History(size=10)
    history.record([TIMEOUT, replace(PASSED, ok=False, status=None, error="refused")])
    latencies = [0.7, 0.2, 1.0, 0.5, 0.1, 0.9, 0.3, 0.8, 0.4, 0.6]
    for i, latency in enumerate(latencies):
        ok = i != 3
        history.record(
            [replace(PASSED, latency=latency, ok=ok, status=200 if ok else 503)],
        )
    samples = scrape(history)
    assert samples["crawl_check_runs_total"] == {"slow": 1, "home": 11}
    assert samples["crawl_check_failures_total"] == {"slow": 1, "home": 2}
    # The refused run fell out of the 10 kept samples; the lifetime counters keep it.
    assert samples["crawl_check_uptime_ratio"] == {"slow": 0, "home": pytest.approx(0.9)}
    assert samples["crawl_check_recent_latency_seconds[0.5]"] == {"home": 0.5}
    assert samples["crawl_check_recent_latency_seconds[0.9]"] == {"home": 0.9}
    assert samples["crawl_check_recent_latency_seconds[0.99]"] == {"home": 1.0}
    # A summary: its count and sum are of the responses kept (one of 11 had none).
    assert samples["crawl_check_recent_latency_seconds_count"] == {"home": 10}
    assert samples["crawl_check_recent_latency_seconds_sum"] == {"home": pytest.approx(5.5)}
    assert samples["crawl_check_up"] == {"slow": 0, "home": 1}


def junit(results: list[HealthResult], **options: str) -> JUnitXml:
    out = io.StringIO()
    render_junit(results, out, **options)
    text = out.getvalue()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return JUnitXml.fromstring(text.encode())


def failure_of(case: TestCase) -> JUnitFailure:
    (failure,) = case.result
    assert isinstance(failure, JUnitFailure)
    return failure


def test_junit_has_one_case_per_target_and_counts_failures() -> None:
    (suite,) = junit(RESULTS)
    assert suite.name == "crawl check"
    assert (suite.tests, suite.failures, suite.errors) == (5, 3, 0)
    assert suite.timestamp == "2024-05-01T12:30:15"
    cases = list(suite)
    assert [case.name for case in cases] == [result.name for result in RESULTS]
    assert {case.classname for case in cases} == {"crawl.check"}
    assert [case.time for case in cases] == pytest.approx([r.latency for r in RESULTS], abs=1e-3)
    assert [case.is_passed for case in cases] == [r.ok for r in RESULTS]


def test_junit_failure_says_why() -> None:
    redirected = replace(MOVED, ok=False, failures=(Failure("status", "200", "404"),), status=404)
    (suite,) = junit([PASSED, SLOW, TIMEOUT, redirected], suite="nightly")
    assert suite.name == "nightly"
    _, slow, timeout, moved = suite
    assert failure_of(slow).message == SLOW.reason
    assert failure_of(slow).type == "condition"
    assert failure_of(slow).text.splitlines() == [
        "status: expected 200, saw 503",
        "max_latency_ms: expected 1000, saw 2500",
        "cert_min_days: expected 14, saw 3.2",
        "url: https://example.test/api",
        "status: 503",
    ]
    assert failure_of(timeout).message == "timeout: read timed out"
    assert failure_of(timeout).type == "timeout"
    assert "status: -" in failure_of(timeout).text.splitlines()
    assert "final url: https://new.example.test/landing" in failure_of(moved).text.splitlines()


def test_junit_survives_hostile_text() -> None:
    (suite,) = junit([HOSTILE], suite="bad\x00suite")
    (case,) = suite
    assert case.name == HOSTILE.name
    # What XML forbids or a terminal would obey is replaced, the rest kept as sent.
    assert failure_of(case).message == 'protocol: bad <&"> \ufffd\ufffd[31mred\ufffd\ufffd'
    assert "url: https://example.test/évil?a=1&b=<2>" in failure_of(case).text


def test_json_is_one_object_per_result() -> None:
    out = io.StringIO()
    render_json(RESULTS, out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [record["name"] for record in records] == [result.name for result in RESULTS]
    passed, slow, timeout, moved, hostile = records
    assert slow == {
        "name": "api",
        "url": "https://example.test/api",
        "ok": False,
        "status": 503,
        "latency_ms": 2500.0,
        "size": 12,
        "final_url": None,
        "error": None,
        "message": "",
        "reason": SLOW.reason,
        "failures": [
            {"condition": "status", "expected": "200", "seen": "503"},
            {"condition": "max_latency_ms", "expected": "1000", "seen": "2500"},
            {"condition": "cert_min_days", "expected": "14", "seen": "3.2"},
        ],
        "cert_days": None,
        "checked_at": "2024-05-01T12:30:15Z",
    }
    assert (passed["ok"], passed["latency_ms"], passed["cert_days"]) == (True, 123.4, 29.99)
    assert passed["reason"] == ""
    assert (timeout["status"], timeout["size"], timeout["error"]) == (None, None, "timeout")
    assert timeout["reason"] == "timeout: read timed out"
    assert moved["final_url"] == "https://new.example.test/landing"
    assert (hostile["name"], hostile["message"]) == (HOSTILE.name, HOSTILE.message)
    assert "naïve" in out.getvalue()  # readable, not \u-escaped


def table(results: list[HealthResult]) -> str:
    out = io.StringIO()
    render_table(results, out)
    return out.getvalue()


def test_table_shows_each_check_and_a_summary() -> None:
    text = table(RESULTS)
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[-1] == "5 checked, 3 failed"
    rows = {row.split()[1]: row for row in lines if row.startswith("│")}
    assert set(rows) == {"home", "api", "slow", "old", "naïve"}
    for name, result in [("home", PASSED), ("api", SLOW), ("slow", TIMEOUT), ("old", MOVED)]:
        assert result.url in rows[name]
        assert ("OK" if result.ok else f"FAIL {result.reason}") in rows[name]
    assert "FAIL protocol: bad" in rows["naïve"]
    assert 'naïve "quoted" name ☕' in rows["naïve"]
    assert "https://new.example.test/landing" in rows["old"]
    assert " 503 " in rows["api"]
    assert "2500 ms" in rows["api"]
    assert "5.1 kB" in rows["home"]
    assert "30.0" in rows["home"]  # certificate days
    assert "cert days" not in table([SLOW, MOVED])


def test_table_keeps_long_urls_whole_on_a_pipe() -> None:
    long = replace(PASSED, url="https://example.test/" + "segment/" * 30)
    text = table([long, SLOW])
    assert long.url in text
    assert f"FAIL {SLOW.reason}" in text


def test_table_for_ping_has_one_url_column() -> None:
    pinged = [replace(PASSED, name=PASSED.url), replace(TIMEOUT, name=TIMEOUT.url)]
    text = table(pinged)
    header = text.splitlines()[1]
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "url", "status", "latency", "size", "final url", "cert days", "result",
    ]  # fmt: skip
    assert text.count(TIMEOUT.url) == 1
    assert text.splitlines()[-1] == "2 checked, 1 failed"


def checks(history: History, passes: str, start: float = 1000.0) -> list[tuple[float, str]]:
    """Record one check of ``api`` per character (``+`` passed, ``-`` failed), a minute
    apart; the changes of state, with the time of the check that made each."""
    changes = []
    for n, mark in enumerate(passes):
        result = replace(SLOW, ok=mark == "+", checked_at=start + 60 * n,
                         failures=() if mark == "+" else SLOW.failures)  # fmt: skip
        changes += [(c.target.since or 0.0, c.after) for c in history.record([result])]
    return changes


def test_a_target_is_down_after_failures_in_a_row_and_up_after_successes() -> None:
    history = History()
    history.expect("api", SLOW.url, failures=3, successes=2)
    # up at once; two failures are a flap; the third in a row makes it down; one pass
    # is not enough, two in a row are
    changes = checks(history, "+--+---+-++")
    assert changes == [(1000.0, "up"), (1000.0 + 60 * 6, "down"), (1000.0 + 60 * 10, "up")]
    (api,) = history.targets()
    assert (api.state, api.since) == ("up", 1000.0 + 60 * 10)


def test_a_target_failing_from_the_start_is_pending_until_its_threshold() -> None:
    history = History()
    history.expect("api", SLOW.url, failures=2)
    assert checks(history, "-") == []
    assert history.targets()[0].state == "pending"
    assert checks(history, "-", start=2000.0) == [(2000.0, "down")]
    assert scrape(history)["crawl_check_down"] == {"api": 1.0}


def test_the_default_thresholds_follow_every_check() -> None:
    history = History()
    assert [state for _, state in checks(history, "+-+")] == ["up", "down", "up"]
