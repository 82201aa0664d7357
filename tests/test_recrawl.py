"""A crawl in rounds: the second round asks every known page whether it changed, and
reports exactly what did (new, changed, removed), at a fraction of the first's bytes."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler.config import Config, parse_config
from crawler.crawl import Crawler
from crawler.errors import ConfigError
from tests.crashes import kill_at_random_moments
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


def round_two_done(out: Path) -> bool:
    """Round 2 committed as finished (a run may be killed after that, before it exits:
    running the command again would begin round 3)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(out / "frontier.sqlite3")) as db:
        values = dict(db.execute("SELECT key, value FROM checkpoint"))
    return values.get("round") == 2 and values.get("finished") == 1


def test_round_two_killed_at_random_moments_records_every_change_once(tmp_path: Path) -> None:
    """SIGKILL in the middle of round 2, again and again, then the same command: the
    round ends with each change in changes.jsonl once and each changed page's item once."""
    import subprocess
    import sys

    with RoundsSite(pages=1500) as site:
        config = tmp_path / "rounds.toml"
        config.write_text(
            f'[crawl]\nstart_urls = ["{site.url("/")}"]\nsitemaps = false\n'
            '[fetch]\nconcurrency = 8\n[rate_limit]\nper_host = ""\n'
            f'[output]\ndir = "{tmp_path / "out"}"\nwarc = "crawl.warc.gz"\n'
            'warc_max_bytes = 400_000\n[recrawl]\nafter = "0s"\n',
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
        kills, finished = kill_at_random_moments(command, times=8, seed=20261203,
                                                 between=(0.3, 1.2),
                                                 done=lambda: round_two_done(tmp_path / "out"))  # fmt: skip
        if not finished:  # one more run ends round 2; after that it would begin round 3
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
    # Every fetch archived once: a page of both rounds twice (response, then response,
    # revisit or 404), a new page once; no torn record (warcio check, every file).
    fetches = Counter(uri for kind, uri, _ in warc_records(out) if kind in ("response", "revisit"))
    assert set(fetches.values()) == {1, 2}
    assert {uri for uri, n in fetches.items() if n == 1} == new
    assert len(fetches) == 1 + 1500 + len(new)


# WARC output: every fetch as received, revisits for what did not change.


def archives(out: Path) -> list[Path]:
    return sorted(out.glob("crawl-0*.warc.gz"))


def warc_records(out: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(type, target URI, WARC headers) of every record of every WARC file, in order;
    each file passes ``warcio check`` and ``warcio index``."""
    import subprocess
    import sys

    from warcio.archiveiterator import ArchiveIterator

    warcio = Path(sys.executable).with_name("warcio")
    files = archives(out)
    assert files
    records = []
    for path in files:
        for command in ("check", "index"):
            done = subprocess.run([str(warcio), command, str(path)], capture_output=True,
                                  text=True, check=False)  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
        with path.open("rb") as stream:
            for record in ArchiveIterator(stream):
                headers = dict(record.rec_headers.headers)
                records.append((record.rec_type, headers.get("WARC-Target-URI", ""), headers))
                record.content_stream().read()
    return records


async def test_warc_holds_each_fetch_and_revisits_unchanged_pages(tmp_path: Path) -> None:
    with RoundsSite(pages=40) as site:
        config = make_config(site, tmp_path)
        config = config.replace(output=dataclasses.replace(
            config.output, warc="crawl.warc.gz", warc_max_bytes=20_000))  # fmt: skip
        await Crawler(config).run()
        site.change(5)
        await Crawler(config).run()
        with RoundsSite(pages=40, validators=False) as plain:  # digests, not 304s
            plain_config = make_config(plain, tmp_path / "plain")
            plain_config = plain_config.replace(output=dataclasses.replace(
                plain_config.output, warc="crawl.warc.gz"))  # fmt: skip
            await Crawler(plain_config).run()
            await Crawler(plain_config).run()
    records = warc_records(tmp_path)
    assert len(archives(tmp_path)) > 2, "rotated at warc_max_bytes"
    responses = {uri: h for kind, uri, h in records if kind == "response"}
    revisits = [(uri, h) for kind, uri, h in records if kind == "revisit"]
    page5 = site.url("/p/5.html")
    assert sum(1 for kind, uri, _ in records if kind == "response" and uri == page5) == 2
    assert len(revisits) == 40  # home and 39 pages unchanged; page 5 changed
    for uri, headers in revisits:
        assert headers["WARC-Profile"].endswith("/revisit/server-not-modified")
        original = responses[uri]
        assert headers["WARC-Refers-To"] == original["WARC-Record-ID"]
        assert headers["WARC-Refers-To-Target-URI"] == uri
        assert headers["WARC-Refers-To-Date"] == original["WARC-Date"]
        assert headers["WARC-Payload-Digest"] == original["WARC-Payload-Digest"]
    requests = [h for kind, _, h in records if kind == "request"]
    assert len(requests) == len(responses) + 1 + len(revisits)  # page 5 twice
    plain_revisits = [h for kind, _, h in warc_records(tmp_path / "plain") if kind == "revisit"]
    assert len(plain_revisits) == 41
    assert all(h["WARC-Profile"].endswith("/identical-payload-digest") for h in plain_revisits)


async def test_fresh_deletes_the_warc_files_and_the_changes(tmp_path: Path) -> None:
    with RoundsSite(pages=5) as site:
        config = make_config(site, tmp_path)
        config = config.replace(output=dataclasses.replace(config.output, warc="crawl.warc.gz"))
        await Crawler(config).run()
        (tmp_path / "crawl-notes.warc.gz").write_bytes(b"mine")  # not the crawl's
        assert archives(tmp_path)
        assert (tmp_path / "changes.jsonl").exists()
        await Crawler(config).discard()
    assert not archives(tmp_path)
    assert not (tmp_path / "changes.jsonl").exists()
    assert (tmp_path / "crawl-notes.warc.gz").read_bytes() == b"mine"


async def test_recrawl_added_to_a_finished_crawl_begins_round_two(
    site: RoundsSite, tmp_path: Path
) -> None:
    with_rounds = make_config(site, tmp_path, after="1d")
    await Crawler(with_rounds.replace(recrawl=None)).run()  # finished, without [recrawl]
    site.take()
    second = await Crawler(with_rounds).run()
    assert (second.round, second.changes["new"], second.pages) == (2, 201, 201)
    third = await Crawler(with_rounds).run()  # now every page has a state, due in a day
    assert (third.round, third.already_finished) == (2, True)


async def test_a_dead_workers_warc_files_are_cut_to_its_commit(tmp_path: Path) -> None:
    """Once a shared crawl ends, the files a worker wrote past its last commit go: the
    file it had begun after it is deleted, the one it was writing cut back."""
    from crawler.crawl.checkpoint import Checkpoint
    from crawler.crawl.files import CrawlFiles

    for name in ("crawl-w1-00000.warc.gz", "crawl-w1-00001.warc.gz", "crawl-w1-00002.warc.gz",
                 "crawl-w0-00000.warc.gz"):  # fmt: skip
        (tmp_path / name).write_bytes(b"0123456789")
    files = CrawlFiles(tmp_path, "items.jsonl", "w0", warc="crawl.warc.gz")
    checkpoint = Checkpoint({"warc.file.w1": 1, "offset.warc.w1": 4, "offset.warc.w0": 2})
    await files.repair(checkpoint)  # the others' files, not this worker's own
    sizes = {path.name: path.stat().st_size for path in archives_of(tmp_path)}
    assert sizes == {"crawl-w1-00000.warc.gz": 10, "crawl-w1-00001.warc.gz": 4,
                     "crawl-w0-00000.warc.gz": 10}  # fmt: skip


def archives_of(folder: Path) -> list[Path]:
    return sorted(folder.glob("crawl-*.warc.gz"))


# What a review found: each of these failed before its fix.


async def test_a_page_failing_in_round_two_is_fetched_once(
    site: RoundsSite, tmp_path: Path
) -> None:
    """Its old state stays (a failure changes nothing), but it was fetched in this round:
    the unchanged pages linking to it must not queue it again."""
    config = make_config(site, tmp_path)
    config = config.replace(fetch=config.fetch.replace(retries=0))
    await Crawler(config).run()
    site.take()
    site.failing.add(50)  # linked from pages 47, 48, 49, which do not change
    second = await Crawler(config).run()
    hits = [seen for seen in site.take() if seen.path == "/p/50.html"]
    assert [seen.status for seen in hits] == [500]
    assert second.errors == {"http_status": 1}


async def test_a_round_that_spends_the_page_budget_ends_and_the_next_goes_on(
    site: RoundsSite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(site, tmp_path, after="1d")
    config = config.replace(crawl=dataclasses.replace(config.crawl, max_pages=120))
    first = await Crawler(config).run()
    assert (first.round, first.pages) == (1, 120)
    assert "ended at the page budget" in caplog.text
    second = await Crawler(config).run()  # no page is due, but 81 wait from round 1
    # ... and the start URL, due every round
    assert (second.round, second.pages) == (2, 82)
    assert second.changes == {"new": 81, "unchanged": 1}
    third = await Crawler(config).run()
    assert (third.round, third.already_finished) == (2, True)


async def test_a_scope_rule_added_between_rounds_holds_for_known_pages(
    site: RoundsSite, tmp_path: Path
) -> None:
    config = make_config(site, tmp_path)
    await Crawler(config).run()
    site.take()
    narrower = dataclasses.replace(config.crawl, exclude=(re.compile(r"/p/1\d\d\.html$"),))
    await Crawler(config.replace(crawl=narrower)).run()
    fetched = {seen.path for seen in site.take()}
    assert not {path for path in fetched if re.fullmatch(r"/p/1\d\d\.html", path)}
    assert "/p/99.html" in fetched


async def test_archiving_switched_on_later_never_breaks_a_round(tmp_path: Path) -> None:
    """Round 2 archives 304s as responses (no earlier record to refer to); round 3, whose
    server ignores validators, must write full responses, not revisits of empty 304s."""
    with RoundsSite(pages=20) as site:
        config = make_config(site, tmp_path)
        await Crawler(config).run()
        archived = config.replace(output=dataclasses.replace(config.output, warc="crawl.warc.gz"))
        second = await Crawler(archived).run()
        assert second.changes == {"unchanged": 21}
        site.validators = False
        third = await Crawler(archived).run()
        assert (third.round, third.changes) == (3, {"unchanged": 21})
        fourth = await Crawler(archived).run()
        assert fourth.changes == {"unchanged": 21}
    kinds = Counter(kind for kind, _, _ in warc_records(tmp_path))
    assert kinds == {"warcinfo": 1, "request": 63, "response": 42, "revisit": 21}
