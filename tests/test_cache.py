"""The HTTP cache: every GET revalidated with the stored validators, a 304 answered
from the SQLite file, on every engine, against a loopback server that keeps
validators and counts the conditional requests it gets."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest
from aiohttp import web
from blockbuster import blockbuster_ctx

from crawler import BodyTooLarge, ConfigError, Fetcher, FetchPolicy, Request, SyncFetcher
from crawler.middleware import HttpCache, compose
from crawler.middleware.chain import http_cache, policy_chain
from tests.server import LoopbackServer

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Seen:
    """One request the server got: what it asked for and how it was answered."""

    method: str
    path: str
    if_none_match: str | None
    if_modified_since: str | None
    status: int


class ValidatingServer(LoopbackServer):
    """``/doc/<name>``: a document with an ``ETag`` and a ``Last-Modified`` that answers
    a conditional request for its current version with 304 (and ``X-Checked``, a field
    the 304 updates). ``?validators=etag|modified|none`` sends fewer, ``?no-store``
    adds ``Cache-Control: no-store``, ``?ignore-conditions`` always answers 200, ``?vary=<header>`` varies the body on that request
    header. ``change(name)`` makes a new version (``validators=False``: sent without
    validators from now on); ``move(name, to)`` makes it a 301;
    ``fail_next(name)`` answers its next request with 503. ``/go/<name>``: a 302 to
    ``/doc/<name>``."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Seen] = []
        self._versions: dict[str, int] = {}
        self._moved: dict[str, str] = {}
        self._failing: set[str] = set()
        self._bare: set[str] = set()  # documents sent without validators from now on
        self._state = threading.Lock()

    def change(self, name: str, *, validators: bool = True) -> None:
        with self._state:
            self._versions[name] = self._versions.get(name, 0) + 1
            if not validators:
                self._bare.add(name)

    def move(self, name: str, to: str) -> None:
        with self._state:
            self._moved[name] = to

    def fail_next(self, name: str) -> None:
        with self._state:
            self._failing.add(name)

    def seen_at(self, path: str) -> list[Seen]:
        with self._state:
            return [seen for seen in self.seen if seen.path == path]

    async def mode_doc(self, request: web.Request, rest: str) -> web.StreamResponse:
        with self._state:
            version = self._versions.get(rest, 0)
            moved = self._moved.get(rest)
            failing = rest in self._failing
            self._failing.discard(rest)
            kinds = "none" if rest in self._bare else request.query.get("validators", "both")
        etag = f'"{rest}-{version}"'
        modified = EPOCH + timedelta(days=version)
        headers = {"Content-Type": "text/plain", "X-Checked": str(len(self.seen))}
        if kinds in ("etag", "both"):
            headers["ETag"] = etag
        if kinds in ("modified", "both"):
            headers["Last-Modified"] = format_datetime(modified, usegmt=True)
        if "no-store" in request.query:
            headers["Cache-Control"] = "private, no-store"
        body = f"{rest} version {version}"
        if "vary" in request.query:
            headers["Vary"] = request.query["vary"]
            body += f" for {request.headers.get(request.query['vary'])}"
        if_none_match = request.headers.get("If-None-Match")
        if_modified_since = request.headers.get("If-Modified-Since")
        if failing:
            status = 503
        elif moved is not None:
            status = 301
        elif "ignore-conditions" in request.query:
            status = 200
        elif if_none_match is not None and "ETag" in headers:
            status = 304 if if_none_match == etag else 200
        elif if_modified_since is not None and "Last-Modified" in headers:
            status = 304 if parsedate_to_datetime(if_modified_since) >= modified else 200
        else:
            status = 200
        with self._state:
            self.seen.append(Seen(request.method, request.path, if_none_match,
                                  if_modified_since, status))  # fmt: skip
        if status == 301:
            return web.Response(status=301, headers={"Location": str(moved)})
        if status == 503:
            return web.Response(status=503, text="busy")
        if status == 304:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body.encode(), headers=headers)

    async def mode_go(self, request: web.Request, rest: str) -> web.StreamResponse:
        with self._state:
            self.seen.append(Seen(request.method, request.path, request.headers.get("If-None-Match"),
                                  request.headers.get("If-Modified-Since"), 302))  # fmt: skip
        raise web.HTTPFound(f"/doc/{rest}")


@pytest.fixture(scope="module")
def docs() -> Iterator[ValidatingServer]:
    server = ValidatingServer()
    with server:
        yield server


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A document of this test's own, so tests sharing the server never meet."""
    return "".join(c if c.isalnum() else "-" for c in request.node.name)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "http.sqlite3"


def rows(path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT method, url, status FROM responses ORDER BY url").fetchall()
    db.close()
    return found


def rowids(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        found = [rowid for (rowid,) in db.execute("SELECT rowid FROM responses")]
    db.close()
    return found


# revalidation ----------------------------------------------------------------------------


@pytest.mark.parametrize("validators", ["both", "etag", "modified"])
async def test_a_304_gives_the_stored_response(
    engine: str, docs: ValidatingServer, name: str, cache: Path, validators: str
) -> None:
    url = docs.url(f"/doc/{name}?validators={validators}")
    async with Fetcher(engine=engine, cache=cache) as fetcher:
        first = await fetcher.get(url)
        second = await fetcher.get(url)
    assert (first.status, first.from_cache) == (200, False)
    assert (second.status, second.from_cache) == (200, True)
    assert second.body == first.body == f"{name} version 0".encode()
    assert second.headers["Content-Type"] == "text/plain"
    assert second.headers["X-Checked"] != first.headers["X-Checked"]  # the 304's field won
    assert second.url == url
    assert "If-None-Match" not in second.request.headers  # the caller's request
    sent = docs.seen_at(f"/doc/{name}")
    assert [seen.status for seen in sent] == [200, 304]
    assert sent[0].if_none_match is sent[0].if_modified_since is None
    assert sent[1].if_none_match == (f'"{name}-0"' if validators != "modified" else None)
    assert (sent[1].if_modified_since is not None) == (validators != "etag")


async def test_a_changed_resource_gives_the_new_body_and_replaces_the_stored_one(
    engine: str, docs: ValidatingServer, name: str, cache: Path
) -> None:
    url = docs.url(f"/doc/{name}")
    async with Fetcher(engine=engine, cache=cache) as fetcher:
        await fetcher.get(url)
        docs.change(name)
        changed = await fetcher.get(url)
        again = await fetcher.get(url)
    assert (changed.text, changed.from_cache) == (f"{name} version 1", False)
    assert (again.text, again.from_cache) == (f"{name} version 1", True)
    sent = docs.seen_at(f"/doc/{name}")
    assert [(seen.if_none_match, seen.status) for seen in sent] == [
        (None, 200), (f'"{name}-0"', 200), (f'"{name}-1"', 304)
    ]  # fmt: skip


@pytest.mark.parametrize("query", ["validators=none", "no-store"])
async def test_a_response_that_may_not_be_stored_is_not(
    engine: str, docs: ValidatingServer, name: str, cache: Path, query: str
) -> None:
    url = docs.url(f"/doc/{name}?{query}")
    async with Fetcher(engine=engine, cache=cache) as fetcher:
        responses = [await fetcher.get(url), await fetcher.get(url)]
    assert [r.from_cache for r in responses] == [False, False]
    assert [(s.if_none_match, s.if_modified_since) for s in docs.seen_at(f"/doc/{name}")] == [
        (None, None), (None, None)
    ]  # fmt: skip
    assert rows(cache) == []


async def test_a_response_that_stops_being_storable_drops_the_stored_one(
    docs: ValidatingServer, name: str, cache: Path
) -> None:
    async with Fetcher(cache=cache) as fetcher:
        await fetcher.get(docs.url(f"/doc/{name}"))
        assert len(rows(cache)) == 1
        docs.change(name, validators=False)
        await fetcher.get(docs.url(f"/doc/{name}"))
    assert rows(cache) == []


async def test_conditions_the_caller_set_pass_untouched_and_their_304_is_theirs(
    engine: str, docs: ValidatingServer, name: str, cache: Path
) -> None:
    url = docs.url(f"/doc/{name}")
    async with Fetcher(engine=engine, cache=cache) as fetcher:
        await fetcher.get(url)
        mine = await fetcher.get(url, headers={"If-None-Match": f'"{name}-0"'})
        other = await fetcher.get(url, headers={"If-None-Match": '"something-else"'})
    assert (mine.status, mine.body, mine.from_cache) == (304, b"", False)
    assert (other.status, other.from_cache) == (200, False)
    sent = docs.seen_at(f"/doc/{name}")
    assert [(s.if_none_match, s.if_modified_since) for s in sent[1:]] == [
        (f'"{name}-0"', None), ('"something-else"', None)
    ]  # fmt: skip


async def test_other_methods_pass_untouched(
    engine: str, docs: ValidatingServer, name: str, cache: Path
) -> None:
    url = docs.url(f"/doc/{name}")
    async with Fetcher(engine=engine, cache=cache) as fetcher:
        await fetcher.get(url)
        posted = [await fetcher.post(url, b"x"), await fetcher.post(url, b"x")]
        head = await fetcher.head(url)
    assert [r.from_cache for r in [*posted, head]] == [False, False, False]
    assert [(s.method, s.if_none_match) for s in docs.seen_at(f"/doc/{name}")] == [
        ("GET", None), ("POST", None), ("POST", None), ("HEAD", None)
    ]  # fmt: skip
    assert [method for method, _, _ in rows(cache)] == ["GET"]


async def test_a_revalidation_is_retried_before_the_cache_sees_it(
    docs: ValidatingServer, name: str, cache: Path
) -> None:
    url = docs.url(f"/doc/{name}")
    async with Fetcher(cache=cache, retries=1, backoff=0) as fetcher:
        await fetcher.get(url)
        docs.fail_next(name)
        response = await fetcher.get(url)
    assert (response.status, response.from_cache) == (200, True)
    assert [(s.if_none_match is not None, s.status) for s in docs.seen_at(f"/doc/{name}")] == [
        (False, 200), (True, 503), (True, 304)
    ]  # fmt: skip


async def test_a_response_that_varies_is_revalidated_only_for_the_same_request_header(
    docs: ValidatingServer, name: str, cache: Path
) -> None:
    url = docs.url(f"/doc/{name}?vary=Accept-Language")
    async with Fetcher(cache=cache) as fetcher:
        for language in ["en", "de", "de"]:
            await fetcher.get(url, headers={"Accept-Language": language})
    assert [s.if_none_match is not None for s in docs.seen_at(f"/doc/{name}")] == [
        False, False, True
    ]  # fmt: skip


async def test_a_stored_body_over_the_requests_max_bytes_is_not_revalidated(
    docs: ValidatingServer, name: str, cache: Path
) -> None:
    url = docs.url(f"/doc/{name}")
    async with Fetcher(cache=cache) as fetcher:
        await fetcher.get(url)
    async with Fetcher(cache=cache, max_bytes=4) as fetcher:
        with pytest.raises(BodyTooLarge):
            await fetcher.get(url)
    assert [s.if_none_match for s in docs.seen_at(f"/doc/{name}")] == [None, None]


async def test_an_entry_replaced_during_the_revalidation_is_fetched_plainly(
    docs: ValidatingServer, name: str, cache: Path
) -> None:
    url = docs.url(f"/doc/{name}")
    async with Fetcher(cache=cache) as fetcher:
        await fetcher.get(url)

    async def replace_entry(request: Request, call_next):  # type: ignore[no-untyped-def]
        with sqlite3.connect(cache) as db:  # another Fetcher stores a newer version
            db.execute("UPDATE responses SET etag = '\"newer\"'")
        db.close()
        return await call_next(request)

    async with Fetcher() as plain, HttpCache(cache) as store:
        response = await compose([store, replace_entry], plain.fetch)(plain.request("GET", url))
    assert (response.status, response.from_cache, response.text) == (
        200,
        False,
        f"{name} version 0",
    )
    assert [s.status for s in docs.seen_at(f"/doc/{name}")] == [200, 304, 200]


async def test_a_server_that_ignores_conditions_costs_no_rewrite(
    docs: ValidatingServer, name: str, cache: Path
) -> None:
    url = docs.url(f"/doc/{name}?ignore-conditions")
    async with Fetcher(cache=cache) as fetcher:
        await fetcher.get(url)
        stored = rowids(cache)
        response = await fetcher.get(url)
        assert rowids(cache) == stored  # INSERT OR REPLACE would have made a new row
    assert (response.status, response.from_cache) == (200, False)
    assert docs.seen_at(f"/doc/{name}")[1].if_none_match == f'"{name}-0"'


# redirects ---------------------------------------------------------------------------------


async def test_each_redirect_hop_is_looked_up_by_its_own_url(
    engine: str, docs: ValidatingServer, name: str, cache: Path
) -> None:
    async with Fetcher(engine=engine, cache=cache) as fetcher:
        first = await fetcher.get(docs.url(f"/go/{name}"))
        second = await fetcher.get(docs.url(f"/go/{name}"))
    assert (first.from_cache, second.from_cache) == (False, True)
    assert [r.status for r in second.history] == [302]
    assert second.request_url == docs.url(f"/go/{name}")
    assert second.url == docs.url(f"/doc/{name}")
    assert [s.status for s in docs.seen_at(f"/go/{name}")] == [302, 302]
    assert [s.if_none_match for s in docs.seen_at(f"/doc/{name}")] == [None, f'"{name}-0"']


async def test_a_moved_page_takes_no_validators_to_its_new_address(
    engine: str, docs: ValidatingServer, name: str, cache: Path
) -> None:
    async with Fetcher(engine=engine, cache=cache) as fetcher:
        await fetcher.get(docs.url(f"/doc/{name}"))
        docs.move(name, f"/doc/{name}-new")
        moved = await fetcher.get(docs.url(f"/doc/{name}"))
    assert (moved.status, moved.text, moved.from_cache) == (200, f"{name}-new version 0", False)
    assert "If-None-Match" not in moved.history[0].request.headers
    assert docs.seen_at(f"/doc/{name}")[1].if_none_match == f'"{name}-0"'
    assert docs.seen_at(f"/doc/{name}-new")[0].if_none_match is None


# the file ----------------------------------------------------------------------------------


async def test_the_cache_outlives_the_fetcher_and_is_shared_by_fetchers_at_once(
    engine: str, docs: ValidatingServer, name: str, cache: Path
) -> None:
    url = docs.url(f"/doc/{name}")
    async with Fetcher(engine=engine, cache=cache) as fetcher:
        await fetcher.get(url)
    async with Fetcher(engine=engine, cache=cache) as one, Fetcher(cache=cache) as other:
        responses = await asyncio.gather(one.get(url), other.get(url), one.get(url))
    assert [r.from_cache for r in responses] == [True, True, True]


def test_the_sync_fetcher_keeps_a_cache(
    engine: str, docs: ValidatingServer, name: str, cache: Path
) -> None:
    url = docs.url(f"/doc/{name}")
    with SyncFetcher(engine=engine, cache=cache) as fetcher:
        first, second = fetcher.get(url), fetcher.get(url)
    assert (first.from_cache, second.from_cache, second.text) == (False, True, f"{name} version 0")


async def test_the_file_is_closed_with_the_fetcher_and_opens_again(
    docs: ValidatingServer, name: str, cache: Path
) -> None:
    wal = cache.with_name(cache.name + "-wal")
    fetcher = Fetcher(cache=cache)
    for _ in range(2):
        async with fetcher:
            await fetcher.get(docs.url(f"/doc/{name}"))
            assert wal.exists()  # WAL: the connection is open
        assert not wal.exists()  # SQLite removes it when the last connection closes
    assert [s.status for s in docs.seen_at(f"/doc/{name}")] == [200, 304]


async def test_the_cache_never_blocks_the_loop(
    docs: ValidatingServer, name: str, cache: Path
) -> None:
    urls = [docs.url(f"/doc/{name}-{i}") for i in range(4)]
    with blockbuster_ctx(["crawler"]):
        async with Fetcher(cache=cache) as fetcher:
            for _ in range(2):
                results = [result async for result in fetcher.map(urls)]
    assert sorted(r.response.from_cache for r in results if r.response) == [True] * 4


async def test_a_store_failing_while_open_is_logged_and_skipped(
    docs: ValidatingServer, name: str, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = docs.url(f"/doc/{name}")
    async with Fetcher(cache=cache) as fetcher:
        await fetcher.get(url)
        with sqlite3.connect(cache) as db:
            db.execute("DROP TABLE responses")
        db.close()
        with caplog.at_level(logging.WARNING):
            response = await fetcher.get(url)
    assert (response.status, response.from_cache) == (200, False)
    assert f"HTTP cache {cache}: no such table" in caplog.text


# refused -----------------------------------------------------------------------------------


def other_program(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE requests (fp BLOB PRIMARY KEY)")
    db.close()


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda path: path.mkdir(), "is a directory, not a file"),
        (lambda path: path.write_bytes(b"not a database\n" * 100), "is not an SQLite file"),
        (other_program, "is an SQLite file of another program, not an HTTP cache"),
    ],
    ids=["directory", "not-sqlite", "another-program"],
)
async def test_a_file_that_is_no_cache_is_refused_naming_it(
    tmp_path: Path, make: Callable[[Path], object], problem: str
) -> None:
    path = tmp_path / "cache.sqlite3"
    make(path)
    before = path.read_bytes() if path.is_file() else None
    fetcher = Fetcher(cache=path)
    with pytest.raises(ConfigError, match=re.escape(f"cache: {path} {problem}")) as caught:
        await fetcher.__aenter__()
    assert (caught.value.key, caught.value.value) == ("cache", str(path))
    assert (path.read_bytes() if path.is_file() else None) == before  # left as it was
    with pytest.raises(RuntimeError, match="not open"):
        await fetcher.get("http://127.0.0.1:9/")


def test_the_setting_takes_a_path_or_none() -> None:
    assert FetchPolicy(cache=Path("a/b.sqlite3")) == FetchPolicy(cache="a/b.sqlite3")
    assert FetchPolicy().cache is None
    with pytest.raises(ConfigError, match=r"^cache: expected the path of an SQLite file, or None"):
        FetchPolicy(cache=3)  # type: ignore[arg-type]


def test_a_chain_for_a_policy_with_a_cache_needs_the_open_cache() -> None:
    policy = FetchPolicy(cache="x.sqlite3")
    with pytest.raises(ValueError, match="cache=http_cache"):
        policy_chain(policy, Fetcher().fetch)
    assert http_cache(FetchPolicy()) is None
