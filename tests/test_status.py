"""``crawl status CONFIG`` of a crawl of one process: read from its SQLite store while it
runs (without disturbing it) and after it ends."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tests.guards import WAIT
from tests.rounds_site import RoundsSite, slow_crawl_config


def status(config: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "crawler", "status", str(config), "--json"],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    return done.returncode, json.loads(done.stdout) if done.returncode == 0 else {}


def test_status_reads_a_running_crawl_without_disturbing_it(tmp_path: Path) -> None:
    with RoundsSite(pages=120) as site:
        config = slow_crawl_config(site, tmp_path)
        crawl = subprocess.Popen([sys.executable, "-m", "crawler", str(config), "--quiet"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        try:
            assert site.wait_for_hits("/p/20.html", 1, WAIT)  # well under way
            code, running = status(config)
            assert crawl.poll() is None, "the crawl ended before its status was read"
        finally:
            _, stderr = crawl.communicate(timeout=120)
        assert crawl.returncode == 0, stderr
        assert code == 0
        assert running["finished"] is False
        assert running["frontier"]["seen"] > running["frontier"]["done"] >= 0
        assert running["frontier"]["pending"] + running["frontier"]["leased"] > 0

        code, ended = status(config)
        assert code == 0
        assert ended["finished"] is True
        assert ended["pages"] == 121
        assert ended["frontier"] == {"seen": 121, "pending": 0, "leased": 0, "done": 121}
        assert ended["pages"] >= running["pages"]
        # Reading did not free the crawl's leases: no page was fetched twice.
        fetched = Counter(seen.path for seen in site.take())
        assert max(fetched.values()) == 1
        # Read after the crawl closed its store: nothing is left beside it.
        out = sorted(p.name for p in (tmp_path / "out").iterdir() if "sqlite" in p.name)
        assert out == ["frontier.sqlite3"]


def test_status_of_a_crawl_that_never_ran_says_so(tmp_path: Path) -> None:
    config = tmp_path / "crawl.toml"
    config.write_text(f'[crawl]\nstart_urls = ["http://127.0.0.1:9/"]\n[output]\n'
                      f'dir = "{tmp_path / "out"}"\n', encoding="utf-8")  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "crawler", "status", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("crawl: no saved progress in ")
    assert not (tmp_path / "out").exists()  # looking created nothing
