"""Many workers, one crawl: real worker processes sharing a real Redis, against the
2,000-page loopback site. Every page is fetched once in all and written once
across the workers' files, also when a worker is killed; the per-host rate holds
for the sum of the workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from crawler.urls import canonicalize
from tests.gensite import GeneratedSite

HANG_GUARD = 60  # seconds: a worker that takes this long to get going is stuck, not slow


@pytest.fixture(scope="module")
def site() -> Iterator[GeneratedSite]:
    with GeneratedSite(pages=2000) as running:
        yield running


def write_config(tmp_path: Path, start: str, redis_url: str, extra: str = "") -> Path:
    path = tmp_path / "shop.toml"
    path.write_text(
        f'[crawl]\nstart_urls = ["{start}"]\n[fetch]\nconcurrency = 16\n'
        f'[rate_limit]\nper_host = ""\n[output]\ndir = "{tmp_path / "out"}"\n'
        f'[state]\nfrontier = "{redis_url}"\nlease_timeout = 2\n{extra}',
        encoding="utf-8",
    )
    return path


def crawl(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "crawler", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)  # fmt: skip


def items_across_workers(out: Path) -> list[str]:
    urls: list[str] = []
    for path in sorted(out.glob("items-*.jsonl")):
        urls += [canonicalize(json.loads(line)["url"]) for line in path.read_text().splitlines()]
    return urls


def pages_fetched(site: GeneratedSite, before: int) -> Counter[str]:
    return Counter(path for _, path in site.fetched()[before:])


def test_three_workers_fetch_and_write_every_page_once(
    site: GeneratedSite, redis_url: str, tmp_path: Path
) -> None:
    before = len(site.fetched())
    config = write_config(tmp_path, site.url("/"), redis_url)
    done = crawl(str(config), "--workers", "3")
    stdout, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr

    out = tmp_path / "out"
    assert len(list(out.glob("items-*.jsonl"))) == 3
    urls = items_across_workers(out)
    assert len(urls) == len(set(urls)), "an item was written twice"
    assert set(urls) == site.expected_urls()
    fetched = pages_fetched(site, before)
    assert fetched["/robots.txt"] == 1, "robots.txt is fetched once per crawl, not per worker"
    assert max(fetched.values()) == 1, "a page was fetched twice"
    assert not [path for path in fetched if path.startswith("/private/")]
    # The whole crawl's progress lines (not a terminal) and its summary, as one process shows
    progress = [line for line in stderr.splitlines() if line.startswith("pages=")]
    assert progress, stderr
    summary = dict(line.strip().split(": ", 1) for line in stderr.splitlines()
                   if ": " in line and not line.startswith("crawl:"))  # fmt: skip
    assert int(summary["items"]) == len(urls)
    assert summary["errors"] == "none"
    assert f"crawl: done: {len(urls)} pages, {len(urls)} items, 0 errors" in stderr
    assert stdout == ""

    status = crawl("status", str(config), "--json")
    report, _ = status.communicate(timeout=60)
    totals = json.loads(report)
    assert totals["items"] == len(urls)
    assert totals["finished"] is True
    assert totals["frontier"]["leased"] == 0


def test_a_killed_worker_is_taken_over_and_nothing_is_written_twice(
    site: GeneratedSite, redis_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, site.url("/"), redis_url)
    out = tmp_path / "out"
    workers = {name: crawl("worker", str(config), "--id", name, "--quiet")
               for name in ("w0", "w1", "w2")}  # fmt: skip
    victim = out / "items-w1.jsonl"
    deadline = time.monotonic() + HANG_GUARD
    while not (victim.exists() and victim.stat().st_size > 20_000):
        assert time.monotonic() < deadline, "worker w1 never wrote items"
        time.sleep(0.01)  # polling for the moment to kill: the only signal there is
    os.kill(workers["w1"].pid, signal.SIGKILL)
    workers["w1"].communicate(timeout=HANG_GUARD)  # reaped, and its pipes closed
    for name in ("w0", "w2"):
        _, stderr = workers[name].communicate(timeout=300)
        assert workers[name].returncode == 0, stderr

    urls = items_across_workers(out)
    assert len(urls) == len(set(urls)), "an item was written twice"
    assert set(urls) == site.expected_urls()
    # The dead worker's file holds exactly what it committed: its last requests were
    # handed to the others after lease_timeout, and whatever it wrote for them is cut.
    assert len(victim.read_text().splitlines()) < len(site.expected_urls())

    again = crawl("worker", str(config), "--id", "w1")
    _, stderr = again.communicate(timeout=60)
    assert again.returncode == 0, stderr
    assert "already finished" in stderr
    assert items_across_workers(out) == urls


class TimedSite(GeneratedSite):
    """The generated site, noting when each page request arrived."""

    def __init__(self) -> None:
        super().__init__(pages=120)
        self.arrivals: list[float] = []

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/p/"):
            self.arrivals.append(time.monotonic())
        return await super()._dispatch(request)


def test_the_per_host_rate_holds_for_all_workers_together(redis_url: str, tmp_path: Path) -> None:
    with TimedSite() as timed:
        config = write_config(tmp_path, timed.url("/"), redis_url)
        text = config.read_text().replace('per_host = ""', 'per_host = "20/s"')
        config.write_text(text, encoding="utf-8")
        done = crawl(str(config), "--workers", "3", "--quiet")
        _, stderr = done.communicate(timeout=300)
        assert done.returncode == 0, stderr
        arrivals = sorted(timed.arrivals)
    assert len(arrivals) >= 100
    busiest = max(
        sum(1 for t in arrivals[i:] if t < start + 1.0) for i, start in enumerate(arrivals)
    )
    assert busiest <= 22, f"{busiest} requests in one second at 20/s"
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert rate > 15, f"only {rate:.1f} requests/s: the limiter is too strict"


def test_workers_need_a_shared_frontier(site: GeneratedSite, tmp_path: Path) -> None:
    config = tmp_path / "local.toml"
    config.write_text(f'[crawl]\nstart_urls = ["{site.url("/")}"]\n', encoding="utf-8")
    for args in (["--workers", "2"], []):
        command = [str(config), *args] if args else ["worker", str(config)]
        done = crawl(*command)
        _, stderr = done.communicate(timeout=60)
        assert done.returncode == 2
        assert stderr.startswith("crawl: state.frontier: expected a redis:// URL")


def test_the_page_budget_counts_every_workers_pages(
    site: GeneratedSite, redis_url: str, tmp_path: Path
) -> None:
    """Each worker looks at what the others spent before every lease, and commits
    each page near the end: the overshoot is what the other two hold leased and in
    flight (about 2 x 16 each; 134 pages in a quiet run), never three budgets' worth.
    The bound leaves room for a loaded machine, where commits lag."""
    config = write_config(tmp_path, site.url("/"), redis_url, extra="")
    config.write_text(config.read_text().replace("[fetch]", "max_pages = 100\n[fetch]"))
    done = crawl(str(config), "--workers", "3", "--quiet")
    _, stderr = done.communicate(timeout=120)
    assert done.returncode == 0, stderr
    pages = len(items_across_workers(tmp_path / "out"))
    assert 100 <= pages < 2 * 100
