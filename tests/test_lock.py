"""One crawl per output folder: a second crawl of a folder in use exits at once,
touching nothing, and a crawl killed with SIGKILL leaves no lock behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.config import parse_config
from crawler.crawl import Crawler
from crawler.crawl.lock import FolderLock
from crawler.errors import AlreadyRunning
from crawler.urls import canonicalize
from tests.gensite import GeneratedSite

HANG_GUARD = 120  # seconds: a crawl that takes longer is stuck, not slow


@pytest.fixture(scope="module")
def site() -> Iterator[GeneratedSite]:
    with GeneratedSite(pages=400) as running:
        yield running


def write_config(tmp_path: Path, site: GeneratedSite, out: Path, *, rate: str) -> Path:
    path = tmp_path / "crawl.toml"
    path.write_text(
        f'[crawl]\nstart_urls = ["{site.url("/")}"]\n'
        f'[fetch]\nconcurrency = 4\n[rate_limit]\nper_host = "{rate}"\n'
        f'[output]\ndir = "{out}"\n',
        encoding="utf-8",
    )
    return path


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crawler", str(config), "--quiet", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_until_committed(process: subprocess.Popen[str], out: Path) -> None:
    """Until ``process`` holds the folder and has committed items (a hang guard, not a clock)."""
    deadline = time.monotonic() + HANG_GUARD
    lock, items = out / ".lock", out / "items.jsonl"
    while not (
        lock.exists()
        and f"pid {process.pid} " in lock.read_text()
        and items.exists()
        and items.stat().st_size > 0
    ):
        assert process.poll() is None, "the first crawl ended before the test could see it run"
        assert time.monotonic() < deadline, "the first crawl never committed anything"
        time.sleep(0.02)


def item_urls(out: Path) -> list[str]:
    lines = (out / "items.jsonl").read_text(encoding="utf-8").splitlines()
    return [canonicalize(json.loads(line)["url"]) for line in lines]


def test_a_second_crawl_of_a_folder_in_use_exits_at_once_and_harms_nothing(
    site: GeneratedSite, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    config = write_config(tmp_path, site, out, rate="200/s")  # about 2 s of crawling
    first = start(config)
    try:
        wait_until_committed(first, out)
        # --fresh is the worst a second crawl could do: delete the first one's files.
        second = subprocess.run(
            [sys.executable, "-m", "crawler", str(config), "--fresh"],
            capture_output=True, text=True, timeout=HANG_GUARD,
        )  # fmt: skip
        # Still running: the second refused at once instead of waiting its turn.
        assert first.poll() is None, "the first crawl must still be running for this test"
    finally:
        _, first_err = first.communicate(timeout=HANG_GUARD)
    assert second.returncode == 1
    message = second.stderr.strip()
    assert "\n" not in message, "one line"
    assert str(out) in message
    assert f"pid {first.pid} " in message
    assert first.returncode == 0, first_err
    urls = item_urls(out)
    assert len(urls) == len(set(urls)), "an item was written twice"
    assert set(urls) == site.expected_urls()


def test_sigkill_frees_the_folder_and_the_next_run_resumes_it(
    site: GeneratedSite, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    config = write_config(tmp_path, site, out, rate="200/s")
    first = start(config)
    wait_until_committed(first, out)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=HANG_GUARD)
    resumed = start(config)
    _, stderr = resumed.communicate(timeout=HANG_GUARD)
    assert resumed.returncode == 0, stderr
    urls = item_urls(out)
    assert len(urls) == len(set(urls)), "an item was written twice"
    assert set(urls) == site.expected_urls()


def test_the_lock_names_its_holder_and_is_free_again_once_released(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with FolderLock(path, tmp_path):
        holder = subprocess.run(
            [sys.executable, "-c", (
                "import sys; from pathlib import Path\n"
                "from crawler.crawl.lock import FolderLock\n"
                "from crawler.errors import AlreadyRunning\n"
                "try:\n    FolderLock(Path(sys.argv[1]), 'the folder').acquire()\n"
                "except AlreadyRunning as exc:\n    print(exc)\n"
            ), str(path)],
            capture_output=True, text=True, timeout=HANG_GUARD, check=True,
        ).stdout  # fmt: skip
        assert holder.startswith(f"the folder is in use by another crawl (pid {os.getpid()} ")
    with FolderLock(path, tmp_path):  # released: free again, in this process too
        pass


async def test_a_crawler_in_this_process_refuses_a_folder_another_holds(
    site: GeneratedSite, tmp_path: Path
) -> None:
    config = parse_config({
        "crawl": {"start_urls": [site.url("/")]},
        "output": {"dir": str(tmp_path)},
    })  # fmt: skip
    with FolderLock(tmp_path / ".lock", tmp_path), pytest.raises(AlreadyRunning):
        await Crawler(config).run()
    assert not (tmp_path / "items.jsonl").exists(), "a refused crawl creates no file"


def test_a_link_check_with_an_output_folder_holds_it_and_status_does_not(
    site: GeneratedSite, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = write_config(tmp_path, site, out, rate="")
    (out / "stats.json").write_text('{"pages": 3, "finished": false}\n', encoding="utf-8")
    with FolderLock(out / ".lock", out):
        check = subprocess.run(
            [sys.executable, "-m", "crawler", "check", "--crawl", str(config), "--output", str(out)],
            capture_output=True, text=True, timeout=HANG_GUARD,
        )  # fmt: skip
        status = subprocess.run(
            [sys.executable, "-m", "crawler", "status", str(config), "--json"],
            capture_output=True, text=True, timeout=HANG_GUARD,
        )  # fmt: skip
    assert check.returncode == 1
    assert check.stderr.strip() == (
        f"crawl: {out} is in use by another crawl (pid {os.getpid()} on {socket.gethostname()}); "
        "wait for it to finish or stop it"
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["pages"] == 3
