"""Crashes and full disks: a crawl killed at any moment, or stopped by a full
disk, resumes to exactly the pages it should have, each written once."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiofile import AIOFile

from crawler.config import parse_config
from crawler.crawl import Crawler
from crawler.errors import SinkError
from crawler.sinks._pages import PARTIAL
from crawler.urls import canonicalize
from tests.crashes import kill_at_random_moments
from tests.gensite import GeneratedSite

KILLS = 12


@pytest.fixture(scope="module")
def site() -> Iterator[GeneratedSite]:
    with GeneratedSite(pages=3000) as running:
        yield running


def write_config(tmp_path: Path, site: GeneratedSite, out: Path) -> Path:
    path = tmp_path / "crawl.toml"
    path.write_text(
        f'[crawl]\nstart_urls = ["{site.url("/")}"]\n'
        '[fetch]\nconcurrency = 8\nper_host_concurrency = 8\n[rate_limit]\nper_host = ""\n'
        f'[output]\ndir = "{out}"\npages = true\n',
        encoding="utf-8",
    )
    return path


def crawl(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crawler", str(config), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def assert_exactly_once(out: Path, site: GeneratedSite) -> None:
    """Every reachable page in the items once, no torn line, every body saved, no leftovers."""
    lines = (out / "items.jsonl").read_text(encoding="utf-8").splitlines()
    urls = [canonicalize(json.loads(line)["url"]) for line in lines]  # a torn line fails here
    assert len(urls) == len(set(urls)), "an item was written twice"
    assert set(urls) == site.expected_urls()
    errors = [json.loads(line)["url"] for line in (out / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == len(set(errors)), "an error was written twice"
    saved = [p for p in (out / "pages").rglob("*") if p.is_file()]
    assert not [p for p in saved if PARTIAL in p.parts], "a half-written body was left"
    assert len(saved) >= len(site.expected_urls())
    stats = json.loads((out / "stats.json").read_text())
    assert stats["items"] == len(urls)
    assert stats["finished"] is True


def test_sigkill_at_many_random_moments_then_resume_is_exact(
    site: GeneratedSite, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    config = write_config(tmp_path, site, out)
    command = [sys.executable, "-m", "crawler", str(config), "--quiet"]
    kills, _ = kill_at_random_moments(command, times=KILLS, seed=20261125, between=(0.05, 1.0))
    assert kills >= KILLS * 2 // 3, "the crawl finished before most kills: make the site bigger"
    last = crawl(config)
    _, stderr = last.communicate(timeout=120)
    assert last.returncode == 0, stderr
    assert_exactly_once(out, site)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 640 KiB tmpfs: the crawl's output fills it long before the crawl ends."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(disk)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_stops_the_crawl_clearly_and_it_resumes_exactly(
    site: GeneratedSite, small_disk: Path, tmp_path: Path
) -> None:
    out = small_disk / "out"
    config = write_config(tmp_path, site, out)
    full = crawl(config)
    _, stderr = full.communicate(timeout=120)
    assert full.returncode == 1
    assert stderr.startswith("crawl: fatal: ")
    assert "full" in stderr or "No space left on device" in stderr
    assert str(out) in stderr, "the message names the file that could not be written"

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = crawl(config)
    _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert_exactly_once(out, site)


async def test_a_failing_items_file_stops_the_crawl_and_it_resumes_exactly(
    site: GeneratedSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same, deterministic, for the items file: the disk fills while writing it."""
    config = parse_config({
        "crawl": {"start_urls": [site.url("/")]},
        "fetch": {"concurrency": 8},
        "rate_limit": {"per_host": ""},
        "output": {"dir": str(tmp_path), "pages": True},
    })  # fmt: skip
    real_write = AIOFile.write_bytes
    written = 0

    async def fill_up(self: AIOFile, data: bytes, offset: int = 0) -> Any:
        nonlocal written
        if self.name.endswith("items.jsonl"):
            written += len(data)
            if written > 100_000:
                raise OSError(errno.ENOSPC, "No space left on device")
        return await real_write(self, data, offset)

    monkeypatch.setattr(AIOFile, "write_bytes", fill_up)
    with pytest.raises(SinkError) as caught:
        await Crawler(config).run()
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.path == tmp_path / "items.jsonl"
    assert "No space left on device" in str(caught.value)
    monkeypatch.undo()

    stats = await Crawler(config).run()
    assert stats.items == len(site.expected_urls())
    assert_exactly_once(tmp_path, site)
