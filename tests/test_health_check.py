"""Health checks against loopback servers that are up, down, slow, or wrong in
status, body, headers or certificate: each condition passes and fails when it
should, on every engine."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from crawler.health.probe import check_targets
from crawler.health.result import HealthResult
from crawler.health.targets import Target, parse_health_config
from tests.guards import LATE, hang_guard
from tests.server import LoopbackServer


def say(server: LoopbackServer, **query: Any) -> str:
    return server.url("/say?" + urlencode(query))


async def check(engine: str, **target: Any) -> HealthResult:
    (config_target,) = parse_health_config({"target": [target]}).targets
    (result,) = await check_targets([config_target], engine=engine)
    return result


def conditions(result: HealthResult) -> list[str]:
    return [failure.condition for failure in result.failures]


async def test_a_healthy_target_passes_every_condition(engine: str, server: LoopbackServer) -> None:
    body = json.dumps({"status": "ok", "db": {"connected": True, "pool": [3, 4]}, "v": "v1.22"})
    url = say(server, body=body, type="application/json", **{"h-X-Build": "Release-42"})
    result = await check(
        engine, name="api", url=url, status=[200, 204], max_latency_ms=5000,
        body_contains=['"ok"', "connected"], body_regex=r"v\d+\.\d+",
        headers={"content-type": "JSON", "x-build": "release"},
        json={"status": "ok", "db.connected": True, "db.pool.1": 4},
    )  # fmt: skip
    assert result.ok, result.reason
    assert (result.name, result.status, result.final_url) == ("api", 200, url)
    assert result.size == len(body)
    assert result.latency > 0
    assert result.failures == ()


async def test_wrong_status_body_headers_and_json_each_fail(
    engine: str, server: LoopbackServer
) -> None:
    body = json.dumps({"status": "degraded", "db": {"connected": 1}})
    url = say(server, status=503, body=body, type="application/json")
    result = await check(
        engine, url=url, status="2xx", body_contains="Welcome", body_regex=r"v\d+",
        headers={"x-build": "release", "content-type": "text/html"},
        json={"status": "ok", "db.connected": True, "db.missing": 1},
    )  # fmt: skip
    assert not result.ok
    assert result.status == 503
    assert result.error is None
    seen = {failure.condition: (failure.expected, failure.seen) for failure in result.failures}
    assert seen == {
        "status": ("2xx", "503"),
        "body_contains": ("'Welcome' in the body", f"not found in {len(body)} bytes"),
        "body_regex": ("a match for 'v\\d+' in the body", f"found none in {len(body)} bytes"),
        "header.x-build": ("to contain 'release'", "the response has no such header"),
        "header.content-type": ("to contain 'text/html'", "'application/json'"),
        'json."db.connected"': ("true", "1"),
        'json."db.missing"': ("1", "found nothing there"),
        "json.status": ('"ok"', '"degraded"'),
    }
    assert "status: expected 2xx, saw 503" in result.reason


async def test_each_failure_reads_as_a_sentence(engine: str, server: LoopbackServer) -> None:
    body = json.dumps({"status": "degraded"})
    url = say(server, status=503, body=body, type="application/json")
    result = await check(
        engine, url=url, status="2xx", body_contains="Nope", body_regex=r"v\d+",
        headers={"x-build": "release", "content-type": "text/html"},
        json={"status": "ok", "db.connected": True},
    )  # fmt: skip
    assert [str(failure) for failure in result.failures] == [
        "status: expected 2xx, saw 503",
        f"body_contains: expected 'Nope' in the body, not found in {len(body)} bytes",
        f"body_regex: expected a match for 'v\\d+' in the body, found none in {len(body)} bytes",
        "header.x-build: expected to contain 'release', the response has no such header",
        "header.content-type: expected to contain 'text/html', saw 'application/json'",
        'json.status: expected "ok", saw "degraded"',
        'json."db.connected": expected true, found nothing there',
    ]
    assert result.reason == "; ".join(str(failure) for failure in result.failures)


async def test_a_body_that_is_not_json_fails_the_json_condition(
    engine: str, server: LoopbackServer
) -> None:
    result = await check(engine, url=server.url("/ok"), json={"status": "ok"})
    assert conditions(result) == ["json"]
    assert "invalid JSON" in result.failures[0].seen


async def test_status_classes_and_codes(engine: str, server: LoopbackServer) -> None:
    assert (await check(engine, url=server.url("/status/404"), status=[404])).ok
    assert (await check(engine, url=server.url("/status/204"), status=["2xx", 404])).ok
    failed = await check(engine, url=server.url("/status/500"))
    assert conditions(failed) == ["status"]
    assert failed.failures[0].expected == "2xx or 3xx"


async def test_a_slow_target_fails_max_latency(engine: str, server: LoopbackServer) -> None:
    result = await check(engine, url=server.url("/slow?delay=0.3"), max_latency_ms=100)
    assert conditions(result) == ["max_latency_ms"]
    assert result.latency >= 0.3
    assert str(result.failures[0]).startswith("max_latency_ms: expected at most 100 ms, saw ")


async def test_a_hanging_target_fails_with_timeout_within_it(
    engine: str, server: LoopbackServer
) -> None:
    with hang_guard(0.5 + LATE):  # the 0.5 s timeout, not the server's HANG
        result = await check(engine, url=server.url("/hang-before-headers"), timeout=0.5)
    assert (result.ok, result.error, result.status) == (False, "timeout", None)
    assert result.reason.startswith("timeout")


async def test_a_down_target_fails_as_refused(engine: str, closed_port: int) -> None:
    result = await check(engine, url=f"http://127.0.0.1:{closed_port}/")
    assert (result.ok, result.error) == (False, "refused")
    assert "Connection refused" in result.message
    assert [str(f) for f in result.failures] == ["fetch: expected a response, got none (refused)"]


async def test_an_unknown_host_fails_as_dns(engine: str) -> None:
    result = await check(engine, url="http://does-not-exist.invalid/", timeout=5)
    assert (result.ok, result.error) == (False, "dns")


async def test_redirects_are_followed_unless_the_target_says_not(
    engine: str, server: LoopbackServer
) -> None:
    followed = await check(engine, url=server.url("/redirect/2"))
    assert followed.ok
    assert followed.status == 200
    assert followed.final_url == server.url("/ok")
    kept = await check(engine, url=server.url("/redirect/2"), follow_redirects=False, status=302)
    assert kept.ok
    assert kept.final_url == server.url("/redirect/2")


async def test_a_valid_certificate_passes_cert_min_days(
    engine: str, tls_valid_server: LoopbackServer, tls_ca_file: str
) -> None:
    url = tls_valid_server.url("/ok")
    passed = await check(engine, url=url, verify_tls=tls_ca_file, cert_min_days=14)
    assert passed.ok, passed.reason
    assert passed.cert_days is not None
    assert 29 < passed.cert_days < 31
    failed = await check(engine, url=url, verify_tls=tls_ca_file, cert_min_days=60)
    assert conditions(failed) == ["cert_min_days"]
    assert str(failed.failures[0]).startswith("cert_min_days: expected at least 60 days left, saw ")
    assert failed.failures[0].seen.endswith("days left")


async def test_an_expired_self_signed_certificate_fails_with_the_reason_and_the_days(
    engine: str, tls_self_signed_expired_server: LoopbackServer
) -> None:
    url = tls_self_signed_expired_server.url("/ok")
    result = await check(engine, url=url, cert_min_days=14)
    assert (result.ok, result.error) == (False, "tls")
    assert "self-signed certificate" in result.message or "self signed" in result.message
    assert result.cert_days is not None
    assert -4 < result.cert_days < -2
    (cert,) = [f for f in result.failures if f.condition == "cert_min_days"]
    assert cert.seen.startswith(("it expired 3.0 days ago", "it expired 2.9"))
    assert str(cert).startswith("cert_min_days: expected at least 14 days left, it expired ")


async def test_an_expired_certificate_read_without_verifying_still_fails_on_days(
    engine: str, tls_expired_server: LoopbackServer, tls_ca_file: str
) -> None:
    url = tls_expired_server.url("/ok")
    trusted = await check(engine, url=url, verify_tls=tls_ca_file, cert_min_days=1)
    assert trusted.error == "tls"
    assert "expired" in trusted.message
    unverified = await check(engine, url=url, verify_tls=False, cert_min_days=1)
    assert unverified.status == 200
    assert conditions(unverified) == ["cert_min_days"]
    assert unverified.cert_days is not None
    assert unverified.cert_days < 0


async def test_many_targets_are_checked_at_once_and_keep_their_order(
    engine: str, server: LoopbackServer
) -> None:
    # /crowd answers none of them until all 20 are at the server at once: checked one
    # after another (or a few at a time), the first would wait, and fail with a 504.
    key = f"health-at-once-{engine}"
    targets = [Target(name=f"t{i}", url=server.url(f"/crowd/{key}?n=20&i={i}")) for i in range(20)]
    results = await check_targets(targets, engine=engine)
    assert [result.name for result in results] == [target.name for target in targets]
    assert all(result.ok for result in results), [r.reason for r in results if not r.ok]
    assert server.peak_in_flight(key) == 20


@pytest.mark.parametrize("method", ["HEAD", "POST"])
async def test_the_method_and_request_headers_are_sent(
    engine: str, server: LoopbackServer, method: str
) -> None:
    result = await check(
        engine, url=server.url("/echo"), method=method, request_headers={"X-Probe": "yes"},
        **({} if method == "HEAD" else {"json": {"method": "POST", "headers.x-probe": "yes"}}),
    )  # fmt: skip
    assert result.ok, result.reason
    assert result.size == 0 if method == "HEAD" else result.size


async def test_more_targets_than_concurrency_keep_their_own_latency_and_timeout(
    server: LoopbackServer,
) -> None:
    """A check's clock starts when it gets its slot: a quick target queued behind a
    slow one for longer than its whole timeout (3 s against 2 s) still passes, within
    its own timeout and latency. Counted from the start of the run, it would fail both."""
    slow = Target(name="slow", url=server.url("/slow?delay=3&queue=1"), timeout=10)
    quick = Target(name="quick", url=server.url("/ok?queue=1"), timeout=2, max_latency_ms=2000)
    results = await check_targets([slow, quick], concurrency=1)
    assert all(result.ok for result in results), [r.reason for r in results if not r.ok]
    assert results[0].latency >= 3  # the slow one had the slot first: the quick one queued


async def test_a_repeated_header_is_matched_as_one_list(
    engine: str, server: LoopbackServer
) -> None:
    url = server.url("/set-cookie?first=1&second=2")
    assert (await check(engine, url=url, headers={"set-cookie": "second=2"})).ok


async def test_json_nested_past_the_recursion_limit_fails_the_condition(
    engine: str, server: LoopbackServer
) -> None:
    url = say(server, body="[", repeat=100_000, type="application/json")
    result = await check(engine, url=url, json={"a": 1})
    assert conditions(result) == ["json"]
    assert result.status == 200


async def test_a_runaway_body_regex_gives_up_instead_of_hanging(server: LoopbackServer) -> None:
    url = say(server, body="a" * 30 + " " + "a " * 3000 + "!")
    with hang_guard(1 + LATE):  # the search's 1 s, not the hours the pattern could take
        result = await check("aiohttp", url=url, body_regex=r"(\w+\s?)*$")
    (failure,) = result.failures
    assert (failure.condition, failure.seen) == (
        "body_regex",
        "gave up after 1 s of searching 6,032 bytes",
    )


async def test_a_long_retry_after_is_capped_by_the_timeout(
    engine: str, server: LoopbackServer
) -> None:
    url = server.url("/retry-after?value=3600&status=503")
    with hang_guard(1 + LATE):  # not the hour the server asked for
        result = await check(engine, url=url, retries=1, timeout=1)
    assert conditions(result) == ["status"]
