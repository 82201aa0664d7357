"""A crawl in rounds: the second round asks every known page whether it changed, and
reports exactly what did (new, changed, removed), at a fraction of the first's bytes."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler.config import Config, parse_config
from crawler.crawl import Crawler
from crawler.errors import ConfigError
from tests.rounds_site import RoundsSite


@pytest.fixture
def site() -> Iterator[RoundsSite]:
    with RoundsSite() as running:
        yield running


def make_config(site: RoundsSite, out: Path, **recrawl: Any) -> Config:
    return parse_config({
        "crawl": {"start_urls": [site.url("/")], "sitemaps": False},
        "rate_limit": {"per_host": ""},
        "fetch": {"concurrency": 16},
        "output": {"dir": str(out)},
        "recrawl": {"after": "0s", **recrawl},
    })  # fmt: skip


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def mutate(site: RoundsSite) -> tuple[set[str], set[str], set[str]]:
    """Change 20 pages, delete 5, add 3 linked from a changed page: their URLs."""
    changed = {site.url(f"/p/{n}.html") for n in range(100, 120)}
    for n in range(100, 120):
        site.change(n)
    removed = {site.url(f"/p/{n}.html") for n in range(150, 155)}
    for n in range(150, 155):
        site.delete(n)
    new = {site.url(f"/p/{site.add(parent=105)}.html") for _ in range(3)}
    return changed, removed, new


async def test_round_two_reports_exactly_what_changed(site: RoundsSite, tmp_path: Path) -> None:
    config = make_config(site, tmp_path)
    first = await Crawler(config).run()
    assert (first.round, first.changes["new"], first.error_count) == (1, 201, 0)
    round_one = site.take()
    sent_one = sum(seen.sent for seen in round_one)

    changed, removed, new = mutate(site)
    second = await Crawler(config).run()
    assert second.round == 2
    assert second.changes == {"changed": 20, "removed": 5, "new": 3, "unchanged": 201 - 25}
    assert second.error_count == 0

    round_two = site.take()
    known = [seen for seen in round_two
             if seen.path != "/robots.txt" and site.url(seen.path) not in new]  # fmt: skip
    assert len(known) == 201
    assert all(seen.if_none_match and seen.if_modified_since for seen in known)
    assert sum(seen.sent for seen in round_two) * 5 < sent_one

    records = lines(tmp_path / "changes.jsonl")
    second_round = [r for r in records if r["round"] == 2]
    by_change: dict[str, set[str]] = {}
    for record in second_round:
        by_change.setdefault(record["change"], set()).add(record["url"])
    assert by_change == {"changed": changed, "removed": removed, "new": new}
    assert Counter(r["change"] for r in records if r["round"] == 1) == {"new": 201}

    items = lines(tmp_path / "items.jsonl")
    assert Counter((item["round"], item["change"]) for item in items) == {
        (1, "new"): 201, (2, "changed"): 20, (2, "new"): 3,
    }  # fmt: skip
    saved = json.loads((tmp_path / "stats.json").read_text())
    assert (saved["round"], saved["changes"]["unchanged"]) == (2, 176)


async def test_without_validators_the_digest_tells(tmp_path: Path) -> None:
    with RoundsSite(validators=False) as site:
        config = make_config(site, tmp_path)
        await Crawler(config).run()
        site.take()
        for n in range(10, 15):
            site.change(n)
        second = await Crawler(config).run()
        assert second.changes == {"changed": 5, "unchanged": 196}
        assert not any(seen.if_none_match for seen in site.take())


async def test_a_round_with_nothing_due_does_nothing_and_says_when(
    site: RoundsSite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(site, tmp_path, after="1d")
    await Crawler(config).run()
    site.take()
    crawler = Crawler(config)
    stats = await crawler.run()
    assert (stats.round, stats.already_finished) == (1, True)
    assert crawler.next_due is not None
    assert site.take() == []
    assert "no page is due yet" in caplog.text
    assert "(in 24 h)" in caplog.text or "(in 1 d)" in caplog.text

    forced = await Crawler(config, recrawl=True).run()  # --recrawl: every page due now
    assert (forced.round, forced.changes["unchanged"]) == (2, 201)


async def test_adaptive_waits_double_for_unchanged_pages(site: RoundsSite, tmp_path: Path) -> None:
    config = make_config(site, tmp_path, after="1h", max_after="3h")
    await Crawler(config).run()
    for _ in range(3):
        await Crawler(config, recrawl=True).run()
    from crawler.frontier import SqliteFrontier

    async with SqliteFrontier(tmp_path / "frontier.sqlite3") as frontier:
        due, upcoming = await frontier.due(0)
    intervals = {row for row in _intervals(tmp_path)}
    assert intervals == {3 * 3600.0}  # 1h, then 2h, then 4h capped at 3h
    assert (due, upcoming is not None) == (0, True)


def _intervals(out: Path) -> list[float]:
    import sqlite3

    with sqlite3.connect(out / "frontier.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT interval FROM pages")]


@pytest.mark.parametrize(
    ("frontier", "recrawl", "message"),
    [
        ("memory", {}, 'state.frontier: expected "sqlite" with [recrawl]'),
        ("sqlite", {"after": "soon"}, "recrawl.after: expected a non-negative number of seconds"),
        ("sqlite", {"after": "2d", "max_after": "1d"}, "recrawl.max_after: expected at least"),
        ("sqlite", {"adaptive": "yes"}, "recrawl.adaptive: expected"),
    ],
)
def test_bad_recrawl_settings_name_the_key(
    frontier: str, recrawl: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config({
            "crawl": {"start_urls": ["http://127.0.0.1:1/"]},
            "state": {"frontier": frontier},
            "recrawl": recrawl,
        })  # fmt: skip


def test_round_two_killed_at_random_moments_records_every_change_once(tmp_path: Path) -> None:
    """SIGKILL in the middle of round 2, again and again, then the same command: the
    round ends with each change in changes.jsonl once and each changed page's item once."""
    import os
    import random
    import signal
    import subprocess
    import sys

    with RoundsSite(pages=1500) as site:
        config = tmp_path / "rounds.toml"
        config.write_text(
            f'[crawl]\nstart_urls = ["{site.url("/")}"]\nsitemaps = false\n'
            '[fetch]\nconcurrency = 8\n[rate_limit]\nper_host = ""\n'
            f'[output]\ndir = "{tmp_path / "out"}"\n[recrawl]\nafter = "0s"\n',
            encoding="utf-8",
        )
        command = [sys.executable, "-m", "crawler", str(config), "--quiet"]
        subprocess.run(command, check=True, timeout=300, capture_output=True)
        changed = {site.url(f"/p/{n}.html") for n in range(0, 1500, 5)}
        for n in range(0, 1500, 5):
            site.change(n)
        removed = {site.url(f"/p/{n}.html") for n in range(3, 1500, 50)}
        for n in range(3, 1500, 50):
            site.delete(n)
        new = {site.url(f"/p/{site.add(parent=10)}.html") for _ in range(3)}
        moments, kills = random.Random(20261203), 0
        for _ in range(8):
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)  # fmt: skip
            try:  # the random moment: the kill comes whenever this wait runs out
                process.wait(timeout=moments.uniform(0.3, 1.2))
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                kills += 1
            else:
                assert process.returncode == 0
                break
        else:
            subprocess.run(command, check=True, timeout=300, capture_output=True)
    assert kills >= 3, "round 2 ended before most kills: make the site bigger"
    out = tmp_path / "out"
    records = [r for r in lines(out / "changes.jsonl") if r["round"] == 2]
    urls = [r["url"] for r in records]
    assert len(urls) == len(set(urls)), "a change was recorded twice"
    by_change: dict[str, set[str]] = {}
    for record in records:
        by_change.setdefault(record["change"], set()).add(record["url"])
    assert by_change == {"changed": changed - removed, "removed": removed, "new": new}
    items = [item for item in lines(out / "items.jsonl") if item["round"] == 2]
    assert sorted(item["url"] for item in items) == sorted((changed - removed) | new)
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["round"], stats["finished"]) == (2, True)
    assert stats["changes"]["changed"] == len(changed - removed)
