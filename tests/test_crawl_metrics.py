"""A running crawl's figures: ``CrawlMetrics`` on a fake clock, and ``crawl CONFIG
--serve`` scraped while it crawls a loopback site."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from crawler.crawl.metrics import NAMED_HOSTS, CrawlMetrics, Histogram
from crawler.crawl.stats import CrawlStats
from crawler.frontier import FrontierStats
from crawler.middleware import RateLimit
from crawler.models import Request, Response
from tests.fakes import FakeTime
from tests.guards import WAIT
from tests.promtool import assert_promtool_accepts
from tests.rounds_site import RoundsSite, slow_crawl_config


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


async def test_hosts_past_the_busiest_are_summed_and_labels_stay_bounded() -> None:
    clock = FakeTime()
    metrics = CrawlMetrics(clock=clock.clock)

    async def answer(request: Request) -> Response:
        clock.now += 0.2  # every exchange takes 200 ms
        return Response(request, 429 if "slow" in request.url else 200, {})

    send = metrics.observe(answer)
    for n in range(30):  # host n gets 30 - n requests
        for _ in range(30 - n):
            await send(Request(f"http://h{n}.test/"))
    await send(Request("http://slow.test/"))
    hosts = dict(metrics.hosts())
    assert len(hosts) == NAMED_HOSTS + 1
    assert list(hosts)[:3] == ["h0.test:80", "h1.test:80", "h2.test:80"]
    assert hosts["other"].requests == sum(30 - n for n in range(10, 30)) + 1
    assert hosts["other"].backoffs == 1
    assert hosts["h0.test:80"].latency.quantile(0.5) == 0.25  # the bucket 200 ms falls in
    text = await metrics.render()
    assert_promtool_accepts(text)
    found = samples(text)
    labels = {dict(key[1]).get("host") for key in found if key[0] == "crawl_host_requests_total"}
    assert len(labels) == NAMED_HOSTS + 1
    assert found[("crawl_host_backoffs_total", (("host", "other"),))] == 1
    assert found[("crawl_host_request_duration_seconds_count", (("host", "h0.test:80"),))] == 30


def test_histograms_add_bucket_by_bucket() -> None:
    a, b = Histogram((0.1, 1.0)), Histogram((0.1, 1.0))
    for value in (0.05, 0.5, 5.0):
        a.observe(value)
    b.observe(0.5)
    a.add(b)
    assert a.buckets() == [("0.1", 1.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert (a.count, a.quantile(0.5), a.quantile(1.0)) == (4, 1.0, None)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:  # loopback only
        return str(answer.read().decode())


def test_a_crawl_serves_its_figures_while_it_runs(tmp_path: Path) -> None:
    with RoundsSite(pages=120) as site:
        config = slow_crawl_config(site, tmp_path)
        crawl = subprocess.Popen(
            [sys.executable, "-m", "crawler", str(config), "--quiet", "--serve", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert crawl.stderr is not None
            line = crawl.stderr.readline()
            base = re.match(r"crawl: serving (http://127\.0\.0\.1:\d+/)metrics", line)
            assert base, line
            assert site.wait_for_hits("/p/31.html", 1, WAIT)  # two links deep
            arrived = len(site.requests)
            text = fetch(base[1] + "metrics")
            metrics = samples(text)
            arrived_after = len(site.requests)
            status = json.loads(fetch(base[1] + "status.json"))
            assert crawl.poll() is None, "the crawl ended before its figures were read"
        finally:
            crawl.communicate(timeout=120)
        assert crawl.returncode == 0
    assert_promtool_accepts(text)
    host = f"127.0.0.1:{site.port}"
    requests = metrics[("crawl_host_requests_total", (("host", host),))]
    # Every exchange the site answered, but the few in flight to it (8 at most).
    assert arrived - 8 <= requests <= arrived_after
    assert metrics[("crawl_host_request_duration_seconds_count", (("host", host),))] == requests
    assert metrics[("crawl_queue_length", ())] + metrics[("crawl_leased_requests", ())] > 0
    assert metrics[("crawl_pages_total", ())] <= requests
    assert ("crawl_commit_duration_seconds_count", ()) in metrics
    assert status["frontier"]["seen"] > status["frontier"]["done"]
    assert status["hosts"][0]["host"] == host
    assert status["hosts"][0]["rate_per_s"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--serve", "nowhere"], "crawl: --serve expects HOST:PORT such as 127.0.0.1:9108, got 'nowhere'"),
        (["--workers", "2", "--serve", "127.0.0.1:0"], "crawl: --serve is for one process"),
    ],
)  # fmt: skip
def test_bad_serve_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    config = tmp_path / "crawl.toml"
    config.write_text('[crawl]\nstart_urls = ["http://127.0.0.1:9/"]\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "crawler", str(config), *args],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(message)


class PacedRun:
    """A run as ``CrawlMetrics`` reads it, whose hosts at ``auto`` learned these rates."""

    def __init__(self, rates: dict[str, float]) -> None:
        self.stats = CrawlStats()
        self.in_flight = 0
        self.commit_latency = Histogram()
        self.limits = RateLimit("auto")
        self.limits.resume(rates)

    async def frontier_stats(self) -> FrontierStats:
        return FrontierStats()


async def test_learned_rates_are_gauges_of_the_busiest_hosts_and_the_rest_summed() -> None:
    metrics = CrawlMetrics()

    async def answer(request: Request) -> Response:
        return Response(request, 200, {})

    send = metrics.observe(answer)
    for n in range(NAMED_HOSTS + 2):
        for _ in range(NAMED_HOSTS + 2 - n):  # h0 the busiest
            await send(Request(f"http://h{n}.test/"))
    rates = {f"h{n}.test:80": float(n + 1) for n in range(NAMED_HOSTS + 2)}
    metrics.attach(PacedRun(rates))
    text = await metrics.render()
    assert_promtool_accepts(text)
    found = samples(text)
    assert found[("crawl_host_rate_limit", (("host", "h0.test:80"),))] == 1.0
    assert found[("crawl_host_rate_limit", (("host", "other"),))] == 11.0 + 12.0
