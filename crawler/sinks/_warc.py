"""The crawl's WARC files, ``crawl-00000.warc.gz``, ``crawl-00001.warc.gz``, ..., resumed exactly.

The commit protocol of ``base.py`` with a position of two numbers: ``commit()``
makes everything written durable and returns ``(index, length)``, the current
file's number and its length, which the crawl stores in its checkpoint. A writer
opened at a stored position deletes this writer's files past ``index`` and cuts
file ``index`` to ``length``, so after a ``kill -9`` the files hold every
committed record once and no torn one. A file that reaches ``max_bytes`` is
closed (and synced) and the next fetch starts a new file, which opens with its
own ``warcinfo`` record.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, ClassVar, NamedTuple

from aiofile import AIOFile

from crawler.errors import SinkError
from crawler.sinks._warc_records import (
    WarcFetch,
    WarcRef,
    new_ref,
    payload_digest,
    render_exchange,
    render_warcinfo,
)
from crawler.sinks.base import IO_ERRORS, AppendedFile, _open_truncated, fsync_directory, sink_error

__all__ = ["WarcPosition", "WarcWriter", "split_warc_name", "warc_files"]

SUFFIXES = (".warc.gz", ".warc")
_INLINE_DIGEST = 1 << 16  # bodies up to this size are hashed on the loop (~40 µs)


class WarcPosition(NamedTuple):
    """Where a writer's committed output ends: the file's number and its length."""

    file_index: int
    length: int


class _Exchange(NamedTuple):
    fetch: WarcFetch
    ref: WarcRef
    refers_to: WarcRef | None  # set for a revisit


def split_warc_name(name: str) -> tuple[str, str]:
    """``"crawl.warc.gz"`` (the configured name) as its stem and suffix."""
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = name.removesuffix(suffix)
            _check_part("stem", stem)
            return stem, suffix
    raise ValueError(f"a WARC file name ends in .warc.gz or .warc, got {name!r}")


def _check_part(what: str, text: str) -> None:
    """Names can never leave the folder: no separator, no parent, no NUL."""
    if not text or ".." in text or any(c in text for c in "/\\\x00"):
        raise ValueError(f"unsafe WARC file {what}: {text!r}")


def _file_name(stem: str, worker: str | None, index: int, suffix: str) -> str:
    return f"{stem}-{worker}-{index:05d}{suffix}" if worker else f"{stem}-{index:05d}{suffix}"


def _indexed_files(
    folder: Path, stem: str, worker: str | None, suffix: str | None
) -> list[tuple[int, Path]]:
    prefix = re.escape(f"{stem}-{worker}-" if worker else f"{stem}-")
    suffixes = "|".join(re.escape(s) for s in ((suffix,) if suffix else SUFFIXES))
    pattern = re.compile(f"{prefix}([0-9]{{5,}})(?:{suffixes})")
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    found = [(int(m[1]), folder / name) for name in names if (m := pattern.fullmatch(name))]
    return sorted(found)


def warc_files(
    folder: Path | str, stem: str, worker: str | None = None, *, suffix: str | None = None
) -> list[Path]:
    """The WARC files of one writer (``suffix=None``: both kinds), in index order.

    Blocking (it lists the folder): from async code, call it in a thread. A worker's
    files are not the crawl's: ``crawl-w1-00000.warc.gz`` is not listed for ``worker=None``.
    """
    _check_part("stem", stem)
    if worker:
        _check_part("worker name", worker)
    return [path for _, path in _indexed_files(Path(folder), stem, worker or None, suffix)]


class WarcWriter(AppendedFile):
    """Request/response (or revisit) records of every fetch, in rotating WARC 1.1 files.

    ``write_response`` and ``write_revisit`` buffer the fetch and return at once
    (a body over 64 KiB is hashed in a thread). Past ``buffer_limit`` body bytes,
    and at ``commit()``, the buffered fetches are rendered in one worker thread
    (warcio, digests, one gzip member per record) and appended through aiofile,
    so the event loop never waits on compression or the disk. Failures are
    ``SinkError``; after one the writer refuses work until reopened at the
    committed position (``aclose()`` then ``open()``, or a new writer).
    """

    buffer_limit: ClassVar[int] = 1 << 20

    def __init__(
        self,
        folder: Path | str,
        *,
        stem: str = "crawl",
        suffix: str = ".warc.gz",
        worker: str | None = None,
        max_bytes: int = 1_000_000_000,
        position: tuple[int, int] | None = None,
        description: str = "",
    ) -> None:
        _check_part("stem", stem)
        if worker:
            _check_part("worker name", worker)
        if suffix not in SUFFIXES:
            raise ValueError(f"suffix must be one of {SUFFIXES}, got {suffix!r}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes!r}")
        committed = WarcPosition(*(position or (0, 0)))
        if committed.file_index < 0 or committed.length < 0:
            raise ValueError(f"position must not be negative, got {position!r}")
        self.folder = Path(folder)
        self.stem, self.suffix, self.worker = stem, suffix, worker or None
        self.max_bytes = max_bytes
        self.description = description
        self._committed = committed  # updated by each commit, so a reopen keeps the data
        self._index, self._length = committed  # the current file, written if not synced
        self._fp: BinaryIO | None = None
        self._file: AIOFile | None = None
        self._pending: list[_Exchange] = []
        self._buffered = 0
        self._lock = asyncio.Lock()
        self._failure: BaseException | None = None

    @property
    def path(self) -> Path:
        """The current file."""
        return self._path(self._index)

    def _current(self) -> Path:
        return self.path

    @property
    def committed(self) -> WarcPosition:
        """The position the last ``commit()`` returned (or the one opened at)."""
        return self._committed

    async def open(self) -> None:
        """Delete the files past the committed one, cut it to its committed length."""
        if self._file is not None:
            return
        await self._open_file(self._reset)
        self._index, self._length = self._committed
        self._pending, self._buffered = [], 0

    async def write_response(self, fetch: WarcFetch) -> WarcRef:
        """Buffer a ``response`` and its ``request``; keep the ref for later revisits."""
        self._usable()
        ref = new_ref(fetch, await self._digest(fetch.body))
        await self._add(_Exchange(fetch, ref, None))
        return ref

    async def write_revisit(self, fetch: WarcFetch, original: WarcRef) -> str:
        """Buffer a ``revisit`` of ``original`` (a ref ``write_response`` returned) and
        its ``request``; returns the revisit's record id.

        A 304 is ``server-not-modified``; any other status must carry the very body
        of the original (same payload digest, else ``ValueError``: write a response)
        and is ``identical-payload-digest``. Either way the revisit names the
        original's record, URI, date and payload digest.
        """
        self._usable()
        if fetch.status != 304:
            digest = await self._digest(fetch.body)
            if digest != original.payload_digest:
                raise ValueError(
                    f"{fetch.url}: body digest {digest} is not the original's "
                    f"{original.payload_digest}; write a response instead"
                )
        ref = new_ref(fetch, original.payload_digest)
        await self._add(_Exchange(fetch, ref, original))
        return ref.record_id

    async def commit(self) -> WarcPosition:
        """Write everything buffered, fsync, and return ``(index, length)``."""
        self._usable()
        async with self._lock:
            await self._spill()
            await self._sync(self._usable())  # a rotation may have changed the file
            self._committed = WarcPosition(self._index, self._length)
            return self._committed

    def _drop_buffer(self) -> None:
        self._pending, self._buffered = [], 0

    def _path(self, index: int) -> Path:
        return self.folder / _file_name(self.stem, self.worker, index, self.suffix)

    def _reset(self) -> BinaryIO:
        """Runs in a thread: the files as they were at the committed position."""
        index, length = self._committed
        self.folder.mkdir(parents=True, exist_ok=True)
        later = [p for i, p in _indexed_files(self.folder, self.stem, self.worker, self.suffix)
                 if i > index]  # fmt: skip
        for path in later:
            path.unlink()
        if later:
            fsync_directory(self.folder)
        path = self._path(index)
        if length and not path.exists():
            raise SinkError(f"{path} is missing; it held {length} committed bytes", path=path)
        return _open_truncated(path, length)

    async def _digest(self, body: bytes) -> str:
        if len(body) <= _INLINE_DIGEST:
            return payload_digest(body)
        return await asyncio.to_thread(payload_digest, body)

    async def _add(self, exchange: _Exchange) -> None:
        self._usable()
        self._pending.append(exchange)
        self._buffered += len(exchange.fetch.body) + 1024  # and about this much of headers
        if self._buffered >= self.buffer_limit:
            async with self._lock:
                await self._spill()

    async def _spill(self) -> None:
        """Render the buffered fetches in a thread and append them; the caller holds the lock."""
        if not self._pending:
            return
        self._usable()
        batch, self._pending, self._buffered = self._pending, [], 0
        try:
            start = WarcPosition(self._index, self._length)
            segments = await asyncio.to_thread(self._render, batch, start)
            for index, data in segments:
                if index != self._index:
                    await self._rotate(index)
                file = self._usable()
                await file.write_bytes(data, self._length)
                self._length += len(data)
        except IO_ERRORS as exc:
            error = (
                exc if isinstance(exc, SinkError) else sink_error(exc, self.path, "cannot write")
            )
            raise self._fail(error) from exc
        except BaseException as exc:  # cancelled mid-write: the tail is unknown now
            self._fail(exc)
            raise

    def _render(self, batch: Sequence[_Exchange], start: WarcPosition) -> list[tuple[int, bytes]]:
        """Runs in a thread: the bytes to append to each file, starting at ``start``."""
        compress = self.suffix == ".warc.gz"
        index, length = start
        segments: list[tuple[int, bytes]] = []
        chunks: list[bytes] = []
        for fetch, ref, refers_to in batch:
            if length >= self.max_bytes:  # full: the next fetch starts the next file
                if chunks:
                    segments.append((index, b"".join(chunks)))
                index, length, chunks = index + 1, 0, []
            if length == 0:
                name = self._path(index).name
                chunks.append(render_warcinfo(name, self.description, compress))
                length += len(chunks[-1])
            chunks.append(render_exchange(fetch, ref, compress, refers_to))
            length += len(chunks[-1])
        segments.append((index, b"".join(chunks)))
        return segments

    async def _rotate(self, index: int) -> None:
        """Sync and close the full file, start file ``index`` (its entry made durable)."""
        file, fp = self._usable(), self._fp
        await file.fsync()  # a commit syncs only the current file
        new = await asyncio.to_thread(_open_truncated, self._path(index), 0)
        self._fp, self._index, self._length = new, index, 0
        self._file = AIOFile.from_fp(new, context=self._context)
        if fp is not None:
            await asyncio.to_thread(fp.close)
