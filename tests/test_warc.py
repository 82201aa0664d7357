"""The WARC writer: records read back by warcio and passed by ``warcio check``, rotation,
exact resume at a committed (file, length) position, errors, and a loop never blocked."""

from __future__ import annotations

import asyncio
import base64
import errno
import gzip
import hashlib
import json
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from blockbuster import blockbuster_ctx
from warcio.archiveiterator import ArchiveIterator

from crawler.errors import SinkError
from crawler.sinks import (
    WarcFetch,
    WarcPosition,
    WarcRef,
    WarcWriter,
    payload_digest,
    split_warc_name,
    warc_files,
)

WARCIO = Path(sys.executable).with_name("warcio")
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
WHEN_TEXT = "2024-05-06T07:08:09.123456Z"
NOT_MODIFIED = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
IDENTICAL = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
HTML = "<!doctype html><title>Bücher</title><p>naïve café ✓</p>".encode()
BINARY = bytes(range(256)) * 40


@dataclass
class Record:
    type: str
    warc: dict[str, str]
    statusline: str  # the HTTP start line, "" for warcinfo
    http: list[tuple[str, str]]
    body: bytes  # as a replay tool reads it: content_stream() decodes what the headers claim


def read_warc(path: Path) -> list[Record]:
    records = []
    with path.open("rb") as fp:
        for record in ArchiveIterator(fp, check_digests=True):
            body = record.content_stream().read()
            assert record.digest_checker.passed is not False, record.digest_checker.problems
            http = record.http_headers
            statusline = f"{http.protocol} {http.statusline}" if http else ""
            records.append(
                Record(
                    record.rec_type,
                    dict(record.rec_headers.headers),
                    statusline,
                    list(http.headers) if http else [],
                    body,
                )
            )
    return records


def warcio_cli(*args: str | Path) -> str:
    done = subprocess.run([WARCIO, *map(str, args)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fail" not in done.stdout.lower(), done.stdout
    return done.stdout


def sha1_base32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def fetch(url: str = "http://h/page", body: bytes = HTML, **fields: Any) -> WarcFetch:
    fields.setdefault("status", 200)
    fields.setdefault("fetched_at", WHEN)
    fields.setdefault("request_headers", [("Host", "h"), ("User-Agent", "crawlwell")])
    fields.setdefault("response_headers", [("Content-Type", "text/html")])
    return WarcFetch(url=url, body=body, **fields)


def noise(size: int, seed: int) -> bytes:
    """Bytes gzip cannot shrink, so file sizes are predictable."""
    return random.Random(seed).randbytes(size)


def types(records: list[Record]) -> list[str]:
    return [r.type for r in records]


# -- records ------------------------------------------------------------------------


async def test_records_pass_warcio_check_and_read_back(tmp_path: Path) -> None:
    gzipped = fetch(
        "http://bücher.example/straße?q=ö#top",
        request_headers=[("Host", "xn--bcher-kva.example"), ("Accept-Encoding", "gzip, br")],
        response_headers=[
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Encoding", "gzip"),
            ("Content-Length", "35"),  # the compressed length on the wire
            ("Set-Cookie", "a=1"),
            ("Transfer-Encoding", "chunked"),
            ("Set-Cookie", "b=2"),
            ("content-length", "35"),  # a repeat: dropped, it would contradict the first
            ("ETag", '"v1"'),
        ],
    )
    empty = fetch("http://h/empty", b"", response_headers=[("Server", "x")])
    binary = fetch(
        "http://h/logo.png",
        BINARY,
        response_headers=[("Content-Type", "image/png"), ("Content-Length", str(len(BINARY)))],
    )
    later = WHEN + timedelta(days=1)
    async with WarcWriter(tmp_path, description="a test crawl\nof two lines") as writer:
        first = await writer.write_response(gzipped)
        await writer.write_response(empty)
        logo = await writer.write_response(binary)
        not_modified = await writer.write_revisit(
            fetch(
                gzipped.url,
                b"",
                status=304,
                fetched_at=later,
                response_headers=[("ETag", '"v1"'), ("Content-Length", "35")],
            ),
            first,
        )
        identical = await writer.write_revisit(
            fetch(
                binary.url,
                BINARY,
                fetched_at=later,
                response_headers=[("Content-Type", "image/png"), ("Content-Encoding", "br")],
            ),
            logo,
        )
        position = await writer.commit()
    path = tmp_path / "crawl-00000.warc.gz"
    assert position == WarcPosition(0, path.stat().st_size)
    assert warc_files(tmp_path, "crawl") == [path]

    warcio_cli("check", "-v", path)
    index = [
        json.loads(line)
        for line in warcio_cli("index", "-f", "warc-type,http:status", path).splitlines()
    ]
    assert [(row["warc-type"], row.get("http:status")) for row in index] == [
        ("warcinfo", None), ("response", "200"), ("request", None), ("response", "200"),
        ("request", None), ("response", "200"), ("request", None), ("revisit", "304"),
        ("request", None), ("revisit", "200"), ("request", None),
    ]  # fmt: skip

    records = read_warc(path)
    info = records[0]
    assert info.warc["WARC-Filename"] == "crawl-00000.warc.gz"
    assert b"description: a test crawl of two lines\r\n" in info.body
    assert b"format: WARC File Format 1.1\r\n" in info.body
    assert b"software: crawlwell/" in info.body
    assert all(r.warc["WARC-Type"] == r.type for r in records)
    assert {r.warc.get("WARC-Date") for r in records[1:7]} == {WHEN_TEXT}

    response, request = records[1:3]
    # IDNA host, UTF-8 percent-escapes, no fragment
    uri = "http://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%B6"
    assert first == WarcRef(response.warc["WARC-Record-ID"], WHEN_TEXT, uri, sha1_base32(HTML))
    assert response.warc["WARC-Target-URI"] == uri
    assert response.warc["WARC-Payload-Digest"] == sha1_base32(HTML)
    assert response.statusline == "HTTP/1.1 200 OK"
    assert response.http == [
        ("Content-Type", "text/html; charset=utf-8"),
        ("X-Orig-Content-Encoding", "gzip"),
        ("Content-Length", str(len(HTML))),
        ("Set-Cookie", "a=1"),
        ("X-Orig-Transfer-Encoding", "chunked"),
        ("Set-Cookie", "b=2"),
        ("ETag", '"v1"'),
    ]
    assert response.body == HTML  # replayable as it is: nothing claims an encoding
    assert request.warc["WARC-Concurrent-To"] == first.record_id
    assert request.warc["WARC-Target-URI"] == uri
    assert request.statusline == "GET /stra%C3%9Fe?q=%C3%B6 HTTP/1.1"
    assert request.http == [("Host", "xn--bcher-kva.example"), ("Accept-Encoding", "gzip, br")]
    assert request.body == b""

    assert records[3].http == [("Server", "x"), ("Content-Length", "0")]
    assert records[3].body == b""
    assert records[3].warc["WARC-Payload-Digest"] == sha1_base32(b"")
    assert records[5].body == BINARY
    assert records[5].http == [("Content-Type", "image/png"), ("Content-Length", "10240")]
    assert logo.payload_digest == records[5].warc["WARC-Payload-Digest"] == sha1_base32(BINARY)

    revisit, revisit_request = records[7:9]
    assert revisit.warc["WARC-Record-ID"] == not_modified
    assert revisit.warc["WARC-Profile"] == NOT_MODIFIED
    assert revisit.warc["WARC-Refers-To"] == first.record_id
    assert revisit.warc["WARC-Refers-To-Target-URI"] == uri
    assert revisit.warc["WARC-Refers-To-Date"] == WHEN_TEXT
    assert revisit.warc["WARC-Payload-Digest"] == first.payload_digest
    assert revisit.warc["WARC-Date"] == "2024-05-07T07:08:09.123456Z"
    assert revisit.statusline == "HTTP/1.1 304 Not Modified"
    assert revisit.http == [("ETag", '"v1"')]  # a 304 has no body: no Content-Length
    assert revisit.body == b""
    assert revisit_request.warc["WARC-Concurrent-To"] == not_modified

    same = records[9]
    assert same.warc["WARC-Record-ID"] == identical
    assert same.warc["WARC-Profile"] == IDENTICAL
    assert same.warc["WARC-Refers-To"] == logo.record_id
    assert same.warc["WARC-Refers-To-Target-URI"] == "http://h/logo.png"
    assert same.warc["WARC-Payload-Digest"] == logo.payload_digest
    assert same.http == [
        ("Content-Type", "image/png"),
        ("X-Orig-Content-Encoding", "br"),
        ("Content-Length", "10240"),
    ]
    assert records[10].warc["WARC-Concurrent-To"] == identical


async def test_every_record_is_its_own_gzip_member(tmp_path: Path) -> None:
    async with WarcWriter(tmp_path) as writer:
        for i in range(3):
            await writer.write_response(fetch(f"http://h/{i}"))
    raw = (tmp_path / "crawl-00000.warc.gz").read_bytes()
    assert raw.count(b"\x1f\x8b\x08") == 7  # warcinfo + 3 x (response, request)
    assert gzip.decompress(raw).count(b"WARC/1.1\r\n") == 7


async def test_uncompressed_warc(tmp_path: Path) -> None:
    async with WarcWriter(tmp_path, suffix=".warc") as writer:
        await writer.write_response(fetch())
    path = tmp_path / "crawl-00000.warc"
    assert path.read_bytes().startswith(b"WARC/1.1\r\nWARC-Type: warcinfo\r\n")
    warcio_cli("check", path)
    assert types(read_warc(path)) == ["warcinfo", "response", "request"]


async def test_odd_headers_cannot_break_a_record(tmp_path: Path) -> None:
    odd = fetch(
        "http://h/odd",
        request_headers=[("X-Note", "a\r\nInjected: yes")],
        response_headers=[("X-Ünï", "ä\x00b"), ("X-Raw", "\udcff")],  # aiohttp's undecodable byte
        reason="Fine\r\nX: y",
        status=299,
        http_version="HTTP/1.0",
        method="HEAD",
    )
    async with WarcWriter(tmp_path) as writer:
        await writer.write_response(odd)
    path = tmp_path / "crawl-00000.warc.gz"
    warcio_cli("check", path)
    response, request = read_warc(path)[1:]
    assert response.statusline == "HTTP/1.0 299 Fine%0D%0AX: y"
    assert response.http == [
        ("X-%C3%9Cn%C3%AF", "%C3%A4%00b"),
        ("X-Raw", "%FF"),
        ("Content-Length", str(len(HTML))),
    ]
    assert request.statusline == "HEAD /odd HTTP/1.0"
    assert request.http == [("X-Note", "a%0D%0AInjected: yes")]


def test_fetches_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="aware"):
        fetch(fetched_at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="method"):
        fetch(method="GET /x")
    with pytest.raises(ValueError, match="status"):
        fetch(status=42)
    with pytest.raises(ValueError, match="version"):
        fetch(http_version="h2")
    assert fetch(request_headers=iter([("A", "1")])).request_headers == (("A", "1"),)


async def test_the_warc_date_is_utc(tmp_path: Path) -> None:
    summer = timezone(timedelta(hours=2))
    async with WarcWriter(tmp_path) as writer:
        ref = await writer.write_response(fetch(fetched_at=WHEN.astimezone(summer)))
    assert ref.date == WHEN_TEXT
    assert read_warc(tmp_path / "crawl-00000.warc.gz")[1].warc["WARC-Date"] == WHEN_TEXT


async def test_a_revisit_must_carry_the_original_body(tmp_path: Path) -> None:
    async with WarcWriter(tmp_path) as writer:
        original = await writer.write_response(fetch())
        with pytest.raises(ValueError, match="write a response"):
            await writer.write_revisit(fetch(body=b"changed"), original)
        assert original.payload_digest == payload_digest(HTML)
    assert types(read_warc(tmp_path / "crawl-00000.warc.gz")) == ["warcinfo", "response", "request"]


# -- names and rotation -------------------------------------------------------------


def test_names_never_leave_the_folder(tmp_path: Path) -> None:
    assert split_warc_name("crawl.warc.gz") == ("crawl", ".warc.gz")
    assert split_warc_name("my.crawl.warc") == ("my.crawl", ".warc")
    for bad in ("crawl.gz", ".warc.gz", "../x.warc.gz", "a/b.warc", "a\\b.warc"):
        with pytest.raises(ValueError):  # noqa: PT011 - each says why in its message
            split_warc_name(bad)
    for stem in ("", "..", "../x", "a/b", "a\x00b"):
        with pytest.raises(ValueError, match="unsafe"):
            WarcWriter(tmp_path, stem=stem)
    with pytest.raises(ValueError, match="unsafe"):
        WarcWriter(tmp_path, worker="../w")
    with pytest.raises(ValueError, match="suffix"):
        WarcWriter(tmp_path, suffix=".gz")
    with pytest.raises(ValueError, match="max_bytes"):
        WarcWriter(tmp_path, max_bytes=0)


@pytest.mark.parametrize("worker", [None, "w1"])
async def test_rotation_starts_each_file_with_its_warcinfo(
    tmp_path: Path, worker: str | None
) -> None:
    max_bytes = 10_000
    bodies = [noise(3000, seed) for seed in range(10)]
    async with WarcWriter(tmp_path, worker=worker, max_bytes=max_bytes) as writer:
        for i, body in enumerate(bodies):
            await writer.write_response(fetch(f"http://h/{i}", body))
            if i % 4 == 3:
                position = await writer.commit()
                assert position == (position.file_index, writer.path.stat().st_size)
        last = await writer.commit()
    prefix = f"crawl-{worker}" if worker else "crawl"
    files = warc_files(tmp_path, "crawl", worker)
    assert [f.name for f in files] == [f"{prefix}-{i:05d}.warc.gz" for i in range(len(files))]
    assert len(files) >= 3
    assert last == (len(files) - 1, files[-1].stat().st_size)
    assert warc_files(tmp_path, "crawl", "other") == []
    warcio_cli("check", *files)
    got = []
    for path in files:
        records = read_warc(path)
        assert records[0].type == "warcinfo"
        assert records[0].warc["WARC-Filename"] == path.name
        assert types(records[1:]) == ["response", "request"] * ((len(records) - 1) // 2)
        got += [r.body for r in records[1::2]]
    assert got == bodies  # every fetch once, in order, never split across files
    for path in files[:-1]:
        size = path.stat().st_size
        assert size >= max_bytes  # full...
        assert size - 2 * 3000 < max_bytes  # ...but only by its last fetch


async def test_a_record_larger_than_max_bytes_goes_in_whole(tmp_path: Path) -> None:
    async with WarcWriter(tmp_path, max_bytes=1) as writer:
        for i in range(3):
            await writer.write_response(fetch(f"http://h/{i}", noise(5000, i)))
    files = warc_files(tmp_path, "crawl")
    assert len(files) == 3
    for i, path in enumerate(files):
        records = read_warc(path)
        assert types(records) == ["warcinfo", "response", "request"]
        assert records[1].body == noise(5000, i)


# -- resume -------------------------------------------------------------------------


async def test_resume_cuts_to_the_committed_position(tmp_path: Path) -> None:
    max_bytes = 10_000
    writer = WarcWriter(tmp_path, max_bytes=max_bytes)
    async with writer:
        for i in range(4):
            await writer.write_response(fetch(f"http://h/{i}", noise(3000, i)))
        committed = await writer.commit()
        # These reach the disk (the close commits them), one into a file of its own,
        # but the crawl never stored their position: a kill -9 came first.
        for i in range(4, 8):
            await writer.write_response(fetch(f"http://h/{i}", noise(3000, i)))
    files = warc_files(tmp_path, "crawl")
    assert len(files) > committed.file_index + 1
    with files[-1].open("ab") as fp:
        fp.write(b"\x1f\x8b\x08\x00torn")  # and a record cut in the middle of its gzip member
    other = tmp_path / "crawl-w1-00009.warc.gz"  # another worker's file is not ours to cut
    other.write_bytes(b"theirs")

    async with WarcWriter(tmp_path, max_bytes=max_bytes, position=committed) as again:
        assert again.committed == committed
        assert warc_files(tmp_path, "crawl") == files[: committed.file_index + 1]
        assert files[committed.file_index].stat().st_size == committed.length
        for i in range(8, 12):
            await again.write_response(fetch(f"http://h/{i}", noise(3000, i)))
    assert other.read_bytes() == b"theirs"
    files = warc_files(tmp_path, "crawl")
    warcio_cli("check", *files)
    urls = [
        r.warc["WARC-Target-URI"] for path in files for r in read_warc(path) if r.type == "response"
    ]
    assert urls == [f"http://h/{i}" for i in [0, 1, 2, 3, 8, 9, 10, 11]]  # each exactly once


async def test_a_fresh_writer_starts_over(tmp_path: Path) -> None:
    (tmp_path / "crawl-00000.warc.gz").write_bytes(b"old")
    (tmp_path / "crawl-00003.warc").write_bytes(b"old")  # the other suffix: not this writer's
    (tmp_path / "crawl-00004.warc.gz").write_bytes(b"old")
    async with WarcWriter(tmp_path) as writer:
        assert await writer.commit() == (0, 0)
        assert (tmp_path / "crawl-00000.warc.gz").stat().st_size == 0
        await writer.write_response(fetch())
    assert warc_files(tmp_path, "crawl") == [
        tmp_path / "crawl-00000.warc.gz",
        tmp_path / "crawl-00003.warc",
    ]
    assert warc_files(tmp_path, "crawl", suffix=".warc.gz") == [tmp_path / "crawl-00000.warc.gz"]
    assert types(read_warc(tmp_path / "crawl-00000.warc.gz")) == ["warcinfo", "response", "request"]


async def test_resume_at_a_missing_or_short_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="missing") as info:
        await WarcWriter(tmp_path, position=(2, 100)).open()
    assert info.value.path == tmp_path / "crawl-00002.warc.gz"
    assert not info.value.path.exists()
    info.value.path.write_bytes(b"short")
    with pytest.raises(SinkError, match="fewer than"):
        await WarcWriter(tmp_path, position=(2, 100)).open()


async def test_reopen_after_close_keeps_committed_data(tmp_path: Path) -> None:
    writer = WarcWriter(tmp_path)
    async with writer:
        await writer.write_response(fetch("http://h/a"))
    await writer.aclose()  # idempotent
    async with writer:
        await writer.write_response(fetch("http://h/b"))
    records = read_warc(tmp_path / "crawl-00000.warc.gz")
    assert types(records) == ["warcinfo", "response", "request", "response", "request"]


async def test_buffered_records_reach_the_file_before_a_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WarcWriter, "buffer_limit", 50_000)
    path = tmp_path / "crawl-00000.warc.gz"
    async with WarcWriter(tmp_path) as writer:
        for i in range(10):
            await writer.write_response(fetch(f"http://h/{i}", noise(20_000, i)))
        assert path.stat().st_size > 150_000  # spilled, not held until the commit
    assert len(read_warc(path)) == 21


async def test_concurrent_writers_and_commits(tmp_path: Path) -> None:
    async with WarcWriter(tmp_path, max_bytes=20_000) as writer:

        async def crawl(worker: int) -> None:
            for i in range(25):
                await writer.write_response(fetch(f"http://h/{worker}/{i}", noise(1000, i)))
                if i % 7 == 0:
                    position = await writer.commit()  # no other task runs before the stat
                    assert position == (position.file_index, writer.path.stat().st_size)

        await asyncio.gather(*(crawl(n) for n in range(6)))
    files = warc_files(tmp_path, "crawl")
    warcio_cli("check", *files)
    records = [r for path in files for r in read_warc(path)[1:]]
    pairs = list(zip(records[::2], records[1::2], strict=True))
    assert all(r.warc["WARC-Concurrent-To"] == s.warc["WARC-Record-ID"] for s, r in pairs)
    assert sorted(s.warc["WARC-Target-URI"] for s, _ in pairs) == sorted(
        f"http://h/{n}/{i}" for n in range(6) for i in range(25)
    )


# -- errors and the event loop ------------------------------------------------------


async def test_a_path_in_the_way_is_a_sink_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SinkError) as info:
        await WarcWriter(blocker).open()
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.errno is not None

    (tmp_path / "crawl-00000.warc.gz").mkdir()
    with pytest.raises(SinkError) as info:
        await WarcWriter(tmp_path).open()
    assert info.value.errno == errno.EISDIR


async def test_a_failed_rotation_poisons_the_writer_until_reopened(tmp_path: Path) -> None:
    writer = WarcWriter(tmp_path, max_bytes=1)
    await writer.open()
    await writer.write_response(fetch("http://h/0"))
    committed = await writer.commit()
    (tmp_path / "crawl-00001.warc.gz").mkdir()  # the next file cannot be created
    await writer.write_response(fetch("http://h/1"))
    with pytest.raises(SinkError) as info:
        await writer.commit()
    assert info.value.errno == errno.EISDIR
    with pytest.raises(SinkError, match="reopen"):
        await writer.write_response(fetch("http://h/2"))
    await writer.aclose()  # closes without pretending to commit
    (tmp_path / "crawl-00001.warc.gz").rmdir()
    async with WarcWriter(tmp_path, max_bytes=1, position=committed) as again:
        await again.write_response(fetch("http://h/3"))
    urls = [
        r.warc["WARC-Target-URI"]
        for p in warc_files(tmp_path, "crawl")
        for r in read_warc(p)
        if r.type == "response"
    ]
    assert urls == ["http://h/0", "http://h/3"]


async def test_disk_full_is_a_sink_error_with_its_errno(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = WarcWriter(tmp_path)
    await writer.open()

    async def disk_full(data: bytes, offset: int = 0) -> int:
        raise SystemError("No space left on device")  # how aiofile's io_uring backend says it

    monkeypatch.setattr(writer._file, "write_bytes", disk_full)
    await writer.write_response(fetch())
    with pytest.raises(SinkError) as info:
        await writer.commit()
    assert info.value.errno == errno.ENOSPC
    await writer.aclose()


async def test_write_before_open_is_a_bug(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await WarcWriter(tmp_path).write_response(fetch())


async def test_the_writer_never_blocks_the_loop(tmp_path: Path) -> None:
    big = noise(300_000, 1)  # hashed in a thread, not on the loop
    with blockbuster_ctx(["crawler"]):
        async with WarcWriter(tmp_path, max_bytes=200_000) as writer:
            refs = []
            for i in range(60):
                refs.append(await writer.write_response(fetch(f"http://h/{i}", noise(20_000, i))))
                if i % 10 == 0:
                    await writer.commit()
            original = await writer.write_response(fetch("http://h/big", big))
            await writer.write_revisit(fetch("http://h/big", big), original)
            await writer.write_revisit(fetch("http://h/0", b"", status=304), refs[0])
            position = await writer.commit()
        async with WarcWriter(tmp_path, max_bytes=200_000, position=position) as again:
            await again.write_response(fetch("http://h/last"))
    files = warc_files(tmp_path, "crawl")
    assert len(files) > 3
    assert sum(len(read_warc(p)) for p in files) == len(files) + 2 * 64
