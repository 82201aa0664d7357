"""Sinks: one conformance suite over every item sink, then JSONL, CSV, paths, pages."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import errno
import json
import os
import tracemalloc
import uuid
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from blockbuster import blockbuster_ctx

from crawler.errors import CrawlerError, SinkError
from crawler.sinks import (
    JsonlSink,
    PagesSink,
    Sink,
    csv_partial,
    render_csv,
    safe_relative_path,
)
from crawler.sinks._paths import resolve_inside
from crawler.sinks.base import BufferedFileSink

Reader = Callable[[Path], list[dict[str, Any]]]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == "", "the file must end with a complete line"
    return [json.loads(line) for line in lines[:-1]]


def read_csv(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8") as fp:
        return list(csv.DictReader(fp))


KINDS: dict[str, tuple[type[BufferedFileSink], str, Reader]] = {
    "jsonl": (JsonlSink, ".jsonl", read_jsonl),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> tuple[type[BufferedFileSink], str, Reader]:
    return KINDS[request.param]


def records(start: int, stop: int) -> list[dict[str, str]]:
    # quotes, commas, newlines, non-ASCII
    return [{"url": f"http://h/{i}", "title": f'Ünï "{i}", a\nb\u2028'} for i in range(start, stop)]


# -- the conformance suite ---------------------------------------------------------


async def test_records_round_trip(
    kind: tuple[type[BufferedFileSink], str, Reader], tmp_path: Path
) -> None:
    cls, suffix, read = kind
    path = tmp_path / "out" / f"items{suffix}"  # missing folders are created
    async with cls(path) as sink:
        assert isinstance(sink, Sink)
        for record in records(0, 50):
            await sink.write(record)
    assert read(path) == records(0, 50)


async def test_commit_returns_the_file_length(
    kind: tuple[type[BufferedFileSink], str, Reader], tmp_path: Path
) -> None:
    cls, suffix, _ = kind
    path = tmp_path / f"items{suffix}"
    async with cls(path) as sink:
        assert await sink.commit() == path.stat().st_size == 0
        for record in records(0, 10):
            await sink.write(record)
        assert path.stat().st_size == 0  # buffered, not yet written
        offset = await sink.commit()
        assert offset == path.stat().st_size > 0
        assert await sink.commit() == offset  # nothing new: same offset


async def test_resume_drops_the_uncommitted_and_torn_tail(
    kind: tuple[type[BufferedFileSink], str, Reader], tmp_path: Path
) -> None:
    cls, suffix, read = kind
    path = tmp_path / f"items{suffix}"
    async with cls(path) as sink:
        for record in records(0, 20):
            await sink.write(record)
        committed = await sink.commit()
        for record in records(20, 30):  # reach the file, but the crawler never stored
            await sink.write(record)  # an offset for them...
    with path.open("ab") as fp:  # ...and then the process died mid-line
        fp.write('{"url":"http://h/torn","title":"Ü'.encode()[:-1])  # cut inside a character

    async with cls(path, resume_at=committed) as sink:
        assert path.stat().st_size == committed
        assert read(path) == records(0, 20)
        for record in records(40, 45):
            await sink.write(record)
    assert read(path) == records(0, 20) + records(40, 45)  # each exactly once


async def test_resume_past_the_end_is_an_error(
    kind: tuple[type[BufferedFileSink], str, Reader], tmp_path: Path
) -> None:
    cls, suffix, _ = kind
    path = tmp_path / f"items{suffix}"
    path.write_bytes(b"")
    with pytest.raises(SinkError) as info:
        await cls(path, resume_at=100).open()
    assert info.value.path == path


async def test_reopen_after_close_keeps_committed_data(
    kind: tuple[type[BufferedFileSink], str, Reader], tmp_path: Path
) -> None:
    cls, suffix, read = kind
    path = tmp_path / f"items{suffix}"
    sink = cls(path)
    async with sink:
        await sink.write(records(0, 1)[0])
    await sink.aclose()  # idempotent
    async with sink:
        await sink.write(records(1, 2)[0])
    assert read(path) == records(0, 2)


async def test_memory_stays_bounded(
    kind: tuple[type[BufferedFileSink], str, Reader], tmp_path: Path
) -> None:
    cls, suffix, read = kind
    path = tmp_path / f"items{suffix}"
    record = {"url": "http://h/x", "body": "x" * 1000}
    count = 4 * cls.buffer_limit // 1000
    async with cls(path) as sink:
        peak = 0
        for _ in range(count):
            await sink.write(record)
            peak = max(peak, sink.buffered)
        assert peak < cls.buffer_limit
        assert path.stat().st_size >= 3 * cls.buffer_limit  # spilled before any commit
    assert len(read(path)) == count


async def test_concurrent_writers_and_commits(
    kind: tuple[type[BufferedFileSink], str, Reader], tmp_path: Path
) -> None:
    cls, suffix, read = kind
    path = tmp_path / f"items{suffix}"
    async with cls(path) as sink:

        async def writer(start: int) -> None:
            for record in records(start, start + 50):
                await sink.write(record)
                if int(record["url"].rsplit("/", 1)[1]) % 7 == 0:
                    assert await sink.commit() <= path.stat().st_size

        await asyncio.gather(*(writer(n * 1000) for n in range(8)))
    got = read(path)
    assert sorted(r["url"] for r in got) == sorted(
        f"http://h/{i}" for n in range(8) for i in range(n * 1000, n * 1000 + 50)
    )


async def test_sink_error_when_the_folder_cannot_exist(
    kind: tuple[type[BufferedFileSink], str, Reader], tmp_path: Path
) -> None:
    cls, suffix, _ = kind
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = blocker / f"items{suffix}"
    with pytest.raises(SinkError) as info:
        async with cls(path):
            pass
    assert isinstance(info.value, CrawlerError)
    assert isinstance(info.value, OSError)
    assert info.value.path == path
    assert info.value.errno is not None
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize(
    "disk_full_error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        SystemError("No space left on device"),  # how aiofile's io_uring backend says it
    ],
)
async def test_a_failed_write_poisons_the_sink_until_reopened(
    kind: tuple[type[BufferedFileSink], str, Reader],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    disk_full_error: Exception,
) -> None:
    cls, suffix, read = kind
    path = tmp_path / f"items{suffix}"
    sink = cls(path)
    await sink.open()
    await sink.write(records(0, 1)[0])
    committed = await sink.commit()

    async def disk_full(data: bytes, offset: int = 0) -> int:
        raise disk_full_error

    monkeypatch.setattr(sink._file, "write_bytes", disk_full)
    await sink.write(records(1, 2)[0])
    with pytest.raises(SinkError) as info:
        await sink.commit()
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(SinkError):
        await sink.write(records(2, 3)[0])
    await sink.aclose()  # closes without pretending to commit
    monkeypatch.undo()
    async with cls(path, resume_at=committed) as again:
        await again.write(records(3, 4)[0])
    assert read(path) == records(0, 1) + records(3, 4)


async def test_write_before_open_is_a_bug(
    kind: tuple[type[BufferedFileSink], str, Reader], tmp_path: Path
) -> None:
    cls, suffix, _ = kind
    with pytest.raises(RuntimeError, match="not open"):
        await cls(tmp_path / f"items{suffix}").write({"a": "1"})


async def test_sinks_never_block_the_loop(
    kind: tuple[type[BufferedFileSink], str, Reader], tmp_path: Path
) -> None:
    cls, suffix, read = kind
    path = tmp_path / f"items{suffix}"
    with blockbuster_ctx(["crawler"]):
        async with cls(path) as sink:
            for _ in range(3):
                for record in records(0, 2000):
                    await sink.write(record)
                await sink.commit()
        async with cls(path, resume_at=path.stat().st_size) as sink:
            await sink.write(records(0, 1)[0])
        pages = PagesSink(tmp_path / "pages")
        async with pages:
            await pages.write_page("http://h/a/b.html", b"<html>")
    assert len(read(path)) == 6001


# -- JSONL --------------------------------------------------------------------------


class Colour(Enum):
    RED = "red"


async def test_jsonl_odd_values(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    async with JsonlSink(path) as sink:
        await sink.write(
            {
                "when": when,
                "day": when.date(),
                "text": "é—😀",
                "utf8": "é".encode(),
                "binary": b"\xff\x00",
                "tags": {"b", "a"},
                "mixed": frozenset({1, "x"}),
                "path": Path("/tmp/x"),
                "price": Decimal("1.10"),
                "id": uuid.UUID(int=1),
                "colour": Colour.RED,
                "nested": {"list": (1, 2)},
            }
        )
        with pytest.raises(TypeError, match="object"):
            await sink.write({"bad": object()})
        await sink.write({"after": "the failure"})
    raw = path.read_bytes()
    assert "é—😀".encode() in raw  # ensure_ascii=False
    assert b'": ' not in raw  # compact separators
    assert b", " not in raw
    first, second = read_jsonl(path)
    assert first == {
        "when": "2024-05-06T07:08:09+00:00",
        "day": "2024-05-06",
        "text": "é—😀",
        "utf8": "é",
        "binary": "/wA=",
        "tags": ["a", "b"],
        "mixed": ["x", 1],  # unsortable: ordered by repr, still stable
        "path": "/tmp/x",
        "price": "1.10",
        "id": "00000000-0000-0000-0000-000000000001",
        "colour": "red",
        "nested": {"list": [1, 2]},
    }
    assert second == {"after": "the failure"}


# -- CSV, rendered from JSONL --------------------------------------------------------


async def write_records(path: Path, records: list[dict[str, Any]]) -> Path:
    async with JsonlSink(path) as sink:
        for record in records:
            await sink.write(record)
    return path


RAGGED: list[dict[str, Any]] = [
    {"url": "u1", "name": 'Ünï, "quoted"', "n": 3},
    {"url": "u2", "price": Decimal("9.90"), "tags": ("a", "b")},  # keys the first lacked
    {"name": "line\nbreak\u2028é—😀", "meta": {"k": [1, None]}, "ratio": 1.5, "none": None},
    {"url": "u4", "ключ": "значение"},  # a key of its own, seen last
]


async def test_csv_has_every_key_as_a_column_in_first_seen_order(tmp_path: Path) -> None:
    jsonl = await write_records(tmp_path / "items.jsonl", RAGGED)
    target = tmp_path / "items.csv"
    assert await render_csv(jsonl, target) == len(RAGGED)
    with target.open(newline="", encoding="utf-8") as fp:
        header = next(csv.reader(fp))
    assert header == ["url", "name", "n", "price", "tags", "meta", "ratio", "none", "ключ"]
    empty = dict.fromkeys(header, "")
    assert read_csv(target) == [
        {**empty, "url": "u1", "name": 'Ünï, "quoted"', "n": "3"},
        {**empty, "url": "u2", "price": "9.90", "tags": '["a","b"]'},
        {**empty, "name": "line\nbreak\u2028é—😀", "meta": '{"k":[1,null]}', "ratio": "1.5"},
        {**empty, "url": "u4", "ключ": "значение"},
    ]
    assert target.read_bytes().startswith(b"url,name,n,price,tags,meta,ratio,none,\xd0")
    assert target.read_bytes().endswith(b"\r\n")  # RFC 4180: CRLF
    assert not csv_partial(target).exists()


async def test_csv_columns_come_first_and_every_other_key_follows(tmp_path: Path) -> None:
    jsonl = await write_records(tmp_path / "items.jsonl", RAGGED)
    target = tmp_path / "items.csv"
    await render_csv(jsonl, target, columns=["price", "url", "absent"])
    rows = read_csv(target)
    assert list(rows[0]) == ["price", "url", "absent", "name", "n", "tags", "meta", "ratio",
                             "none", "ключ"]  # fmt: skip
    assert [(row["price"], row["url"], row["absent"]) for row in rows] == [
        ("", "u1", ""), ("9.90", "u2", ""), ("", "", ""), ("", "u4", "")
    ]  # fmt: skip


async def test_csv_of_no_records_is_the_header_of_its_columns_or_empty(tmp_path: Path) -> None:
    jsonl = await write_records(tmp_path / "items.jsonl", [])
    target = tmp_path / "items.csv"
    assert await render_csv(jsonl, target) == 0
    assert target.read_bytes() == b""
    assert await render_csv(jsonl, target, columns=["url", "title"]) == 0
    assert target.read_bytes() == b"url,title\r\n"


async def test_csv_without_its_jsonl_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "items.csv"
    target.write_bytes(b"kept\r\n")
    assert await render_csv(tmp_path / "missing.jsonl", target) is None
    assert target.read_bytes() == b"kept\r\n"


async def test_csv_is_replaced_whole_and_a_failed_render_keeps_the_old_one(
    tmp_path: Path,
) -> None:
    jsonl = await write_records(tmp_path / "items.jsonl", RAGGED[:1])
    target = tmp_path / "items.csv"
    csv_partial(target).write_bytes(b"left by a render killed halfway")
    await render_csv(jsonl, target)
    first = target.read_bytes()
    assert not csv_partial(target).exists()
    good = jsonl.read_bytes()
    for bad, message in [(b"[1, 2]\n", "line 2: not a JSON object"),
                         (b'{"url": "\xff"}\n', "line 2: not JSON"),  # not UTF-8
                         (b'{"url": "torn', "line 2: not JSON")]:  # fmt: skip
        jsonl.write_bytes(good + bad)
        with pytest.raises(SinkError, match=message) as info:
            await render_csv(jsonl, target)
        assert info.value.path == jsonl
    assert target.read_bytes() == first
    jsonl.write_bytes(good + b'{"url": "u2", "new": 1}\n')
    await render_csv(jsonl, target)
    assert read_csv(target)[1] == {"url": "u2", "name": "", "n": "", "new": "1"}
    assert not csv_partial(target).exists()


async def test_csv_cannot_be_read_or_written_is_a_sink_error(tmp_path: Path) -> None:
    jsonl = await write_records(tmp_path / "items.jsonl", RAGGED)
    target = tmp_path / "items.csv"
    target.mkdir()  # a folder in the way: os.replace cannot put a file there
    with pytest.raises(SinkError) as info:
        await render_csv(jsonl, target)
    assert info.value.path == target
    assert info.value.errno is not None
    assert not csv_partial(target).exists()
    with pytest.raises(SinkError, match="cannot read") as info:
        await render_csv(tmp_path, tmp_path / "other.csv")  # a folder is no JSONL
    assert info.value.path == tmp_path
    assert info.value.errno is not None


async def test_csv_rendering_streams_and_never_blocks_the_loop(tmp_path: Path) -> None:
    record = {"url": "http://h/x", "body": "x" * 400, "nested": {"list": list(range(20))}}
    jsonl = await write_records(tmp_path / "items.jsonl", [record] * 20_000)
    target = tmp_path / "items.csv"
    tracemalloc.start()
    try:
        with blockbuster_ctx(["crawler"]):
            assert await render_csv(jsonl, target) == 20_000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert target.stat().st_size > 8_000_000
    assert peak < 1_000_000, "memory grew with the rows"
    with target.open(newline="", encoding="utf-8") as fp:
        assert sum(1 for _ in csv.reader(fp)) == 20_001


# -- paths --------------------------------------------------------------------------

HOSTILE = [
    "http://h/../../etc/passwd",
    "http://h/%2e%2e/%2e%2e/x",
    "http://h/%2E%2e%2f%2e%2E%2fetc%2fpasswd",
    "http://h/a/..%2f..%2fb",
    "http://h/.%2e/.%2E/z",
    "http://h/C:\\evil",
    "http://h/a\\..\\..\\..\\b",
    "http://h/" + "a" * 5000,
    "http://h/" + "a/" * 3000 + "x.html",
    "http://h/" + "é" * 300 + ".html",
    "http://h/con",
    "http://h/NUL.txt",
    "http://h/com1.tar.gz",
    "http://h/x%00y",
    "http://h/x\x00y/z",
    "http://h/a%0a%0db%09c",
    "http://h/%E2%80%AEgnp.exe",
    "http://h/%ff%fe.bin",
    "http://h/\ud800\udfff/x\udcff.bin?q=\udbff",  # lone surrogates: a str can hold them
    "http://\ud800.example/" + "\ud800" * 300 + ".html",
    "\ud800",
    "http://h/üñí/\uff46\uff49\uff4c\uff45.html",  # fullwidth "file"
    "http://h//etc//passwd",
    "http://h/./.",
    "http://h/trailing.",
    "http://h/a:b|c*d?e<f>g",
    "http://../../x",
    "http://[::1/",
    "file:///etc/passwd",
    "/absolute/path",
    "..",
    "",
]


def files_under(folder: Path) -> set[Path]:
    return {Path(dirpath, name) for dirpath, _, names in os.walk(folder) for name in names}


@pytest.mark.parametrize("url", HOSTILE)
async def test_hostile_urls_stay_inside_root(url: str, tmp_path: Path) -> None:
    relative = safe_relative_path(url)
    assert not relative.is_absolute()
    assert all(part not in ("", ".", "..") for part in relative.parts)
    assert all("\x00" not in p and "\\" not in p and ":" not in p for p in relative.parts)
    assert all(len(part.encode("utf-8")) <= 255 for part in relative.parts)  # and no surrogate
    assert len(str(relative).encode("utf-8")) <= 1024
    root = tmp_path / "root"
    root.mkdir()
    assert resolve_inside(root, relative).is_relative_to(root.resolve())

    outside = tmp_path.parent
    before = files_under(outside)
    async with PagesSink(root) as pages:
        written = await pages.write_page(url, b"body")
    added = files_under(outside) - before
    assert added == {root / written}
    assert all(p.is_relative_to(root) for p in files_under(outside) - before)
    assert (root / written).read_bytes() == b"body"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com/", "example.com/index.html"),
        ("http://Example.com:8080/a/b/", "example.com_8080/a/b/index.html"),
        ("https://h:443/a/page.html", "h/a/page.html"),
        ("http://h/a/b", "h/a/b/index.html"),  # no suffix: a folder, never a file-vs-folder clash
        ("http://h/a//b/./c.txt#frag", "h/a/b/c.txt"),
        ("http://user:pw@h/x.html", "h/x.html"),  # credentials never reach the disk
        ("http://h/con", "h/%63on/index.html"),
        ("http://h/a%2fb.html", "h/a%2Fb.html"),
        ("http://h/100%25.html", "h/100%25.html"),
        ("http://h/%FF%fe.bin", "h/%FF%FE.bin"),  # bytes that are not UTF-8: escaped as sent
        ("http://h/\udcff.bin", "h/%FF.bin"),  # what unquote makes of %FF, named alike
        ("http://h/\ud800\udfff.bin", "h/%ED%A0%80%ED%BF%BF.bin"),  # any other lone surrogate
    ],
)
def test_safe_relative_path_shapes(url: str, expected: str) -> None:
    assert safe_relative_path(url) == PurePosixPath(expected)


def test_query_strings_get_distinct_names() -> None:
    names = {safe_relative_path(f"http://h/page.html?a={i}") for i in range(50)}
    assert len(names) == 50
    assert all(n.suffix == ".html" and n.name.startswith("page~") for n in names)
    assert safe_relative_path("http://h/?q=1") != safe_relative_path("http://h/")


def test_long_segments_are_cut_but_stay_distinct() -> None:
    a = safe_relative_path("http://h/" + "a" * 5000 + ".html")
    b = safe_relative_path("http://h/" + "a" * 4999 + "b.html")
    assert a != b
    assert a.suffix == ".html"


def test_resolve_inside_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    for bad in ["/etc/passwd", "../x", "a/../../x", "link/x", "."]:
        with pytest.raises(ValueError, match=r"safe relative path|outside"):
            resolve_inside(root, PurePosixPath(bad))


async def test_pages_are_rewritten_atomically_and_idempotently(tmp_path: Path) -> None:
    root = tmp_path / "pages"
    async with PagesSink(root) as pages:
        first = await pages.write_page("http://h/a/page.html", b"one")
        again = await pages.write_page("http://h/a/page.html", b"two")
        other = await pages.write_page("http://h/a/page.html?x=1", b"three")
        await asyncio.gather(*(pages.write_page("http://h/same", bytes([i])) for i in range(20)))
    assert first == again == Path("h/a/page.html")
    assert not first.is_absolute()
    assert (root / first).read_bytes() == b"two"
    assert (root / other).read_bytes() == b"three"
    assert {p.relative_to(root) for p in files_under(root)} == {
        first,
        other,
        Path("h/same/index.html"),
    }  # no temp files left behind


async def test_pages_sink_error_is_ours(tmp_path: Path) -> None:
    root = tmp_path / "pages"
    async with PagesSink(root) as pages:
        await pages.write_page("http://h/x.html", b"file")
        with pytest.raises(SinkError):  # x.html is a file, so it cannot be a folder
            await pages.write_page("http://h/x.html/y.html", b"clash")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SinkError):
        await PagesSink(blocker / "pages").open()
