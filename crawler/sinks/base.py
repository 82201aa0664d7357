"""The sink seam: append records to one file, commit to a durable byte offset.

Resume works by offsets, not by records. ``commit()`` makes everything written so
far durable and returns the file's length; the crawler stores that number next to
its frontier state. After a crash it reopens the sink with ``resume_at`` set to the
last stored offset, and ``open()`` truncates the file to exactly that length, so
an uncommitted or torn tail is thrown away and no record is written twice.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
from abc import abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol, runtime_checkable

import caio
from aiofile import AIOFile

from crawler.errors import SinkError
from crawler.models import AsyncResource, Resource
from crawler.sinks._aio import file_context

__all__ = [
    "IO_ERRORS",
    "AppendedFile",
    "BufferedFileSink",
    "Sink",
    "fsync_directory",
    "sink_error",
]


@runtime_checkable
class Sink(Resource, Protocol):
    """Where items go. ``write`` is cheap; ``commit`` is the checkpoint."""

    path: Path

    async def open(self) -> None:
        """Create the file if missing, then truncate it to the ``resume_at`` offset."""

    async def write(self, record: Mapping[str, Any]) -> None:
        """Buffer one record; spills to the file (without fsync) when the buffer is big."""

    async def commit(self) -> int:
        """Write everything buffered, fsync, and return the file's byte length."""

    async def aclose(self) -> None:
        """Commit, then close. Idempotent."""


# aiofile's io_uring backend (caio) reports a failed write or fsync as a SystemError
# carrying only the message ("No space left on device"): an OS error all the same.
IO_ERRORS = (OSError, SystemError)
_ERRNO_OF = {os.strerror(number): number for number in errno.errorcode}


def sink_error(exc: OSError | SystemError, path: Path, doing: str) -> SinkError:
    """Our error for a failed OS call, keeping its errno (ENOSPC, EACCES...)."""
    if isinstance(exc, OSError):
        reason, number = exc.strerror or str(exc), exc.errno
    else:
        reason, number = str(exc), _ERRNO_OF.get(str(exc))
    return SinkError(f"{doing} {path}: {reason}", path=path, errno=number)


def fsync_directory(folder: Path) -> None:
    """Make the entries of ``folder`` (a file created, renamed or removed) durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _open_truncated(path: Path, resume_at: int) -> BinaryIO:
    """Runs in a thread: create ``path`` if needed and cut it to ``resume_at`` bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    fp = open(path, "r+b", opener=lambda p, flags: os.open(p, flags | os.O_CREAT, 0o666))  # noqa: SIM115 - closed by aclose()
    try:
        size = os.fstat(fp.fileno()).st_size
        if size < resume_at:
            raise SinkError(
                f"{path} has {size} bytes, fewer than the committed offset {resume_at}",
                path=path,
            )
        os.ftruncate(fp.fileno(), resume_at)
        if not existed:  # make the new directory entry durable too, once
            fsync_directory(path.parent)
    except BaseException:
        fp.close()
        raise
    return fp


class AppendedFile(AsyncResource):
    """A file opened off the loop and appended through aiofile, which refuses all work
    after a failed or cancelled write: the file may hold a partial chunk, and only a
    reopen at a committed position makes it consistent again."""

    _fp: BinaryIO | None
    _file: AIOFile | None
    _failure: BaseException | None
    _context: caio.AsyncioContext | None = None

    @property
    def closed(self) -> bool:
        return self._file is None

    @abstractmethod
    def _current(self) -> Path:
        """The file being appended to, for messages."""

    async def _open_file(self, opener: Callable[[], BinaryIO]) -> None:
        """Open the file with ``opener``, in a thread; OS errors become ``SinkError``."""
        try:
            fp = await asyncio.to_thread(opener)
        except IO_ERRORS as exc:
            if isinstance(exc, SinkError):
                raise
            raise sink_error(exc, self._current(), "cannot open") from exc
        self._context = self._context or file_context()
        self._fp, self._failure = fp, None
        self._file = AIOFile.from_fp(fp, context=self._context)

    def _fail(self, exc: BaseException) -> BaseException:
        self._failure = exc
        return exc

    def _usable(self) -> AIOFile:
        if self._file is None:
            raise RuntimeError(f"{type(self).__name__} for {self._current()} is not open")
        if self._failure is not None:
            path = self._current()
            raise SinkError(
                f"{path}: an earlier write failed; reopen at the committed position",
                path=path,
            ) from self._failure
        return self._file

    @abstractmethod
    async def commit(self) -> object:
        """Make what was written durable; say how far, as the subclass counts."""

    @abstractmethod
    def _drop_buffer(self) -> None:
        """Forget what is buffered (closing, or after a failure)."""

    async def aclose(self) -> None:
        """Commit, then close. Idempotent."""
        if self._file is None:
            return
        try:
            if self._failure is None:
                await self.commit()
        finally:
            self._drop_buffer()
            fp, self._fp, self._file = self._fp, None, None
            context, self._context = self._context, None
            if fp is not None:
                await asyncio.to_thread(fp.close)
            if context is not None:
                context.close()

    async def _sync(self, file: AIOFile) -> None:
        try:
            await file.fsync()
        except IO_ERRORS as exc:
            raise self._fail(sink_error(exc, self._current(), "cannot fsync")) from exc


class BufferedFileSink(AppendedFile):
    """One append-only file written through aiofile at explicit offsets.

    Subclasses turn a record into bytes (``_encode``). Writes are serialised by a lock so
    the offset always equals the bytes really written. After any failed or cancelled
    write the sink refuses further work: the file may hold a partial chunk, and only
    a reopen at a committed offset makes it consistent again.
    """

    buffer_limit: ClassVar[int] = 1 << 20  # spill to the file past this many bytes

    def __init__(self, path: Path | str, *, resume_at: int = 0) -> None:
        if resume_at < 0:
            raise ValueError(f"resume_at must be >= 0, got {resume_at!r}")
        self.path = Path(path)
        self._resume_at = resume_at  # updated by each commit, so a reopen keeps the data
        self._fp: BinaryIO | None = None
        self._file: AIOFile | None = None
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._offset = 0  # bytes in the file, written but not necessarily synced
        self._lock = asyncio.Lock()
        self._failure: BaseException | None = None

    @property
    def buffered(self) -> int:
        """Bytes held in memory, not yet handed to the file."""
        return self._buffered

    def _current(self) -> Path:
        return self.path

    async def open(self) -> None:
        if self._file is not None:
            return
        await self._open_file(functools.partial(_open_truncated, self.path, self._resume_at))
        self._offset, self._chunks, self._buffered = self._resume_at, [], 0

    async def write(self, record: Mapping[str, Any]) -> None:
        self._usable()
        data = self._encode(record)
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered >= self.buffer_limit:
            async with self._lock:
                await self._spill()

    async def commit(self) -> int:
        file = self._usable()
        async with self._lock:
            await self._spill()
            await self._sync(file)
            self._resume_at = self._offset
            return self._offset

    def _drop_buffer(self) -> None:
        self._chunks, self._buffered = [], 0

    @abstractmethod
    def _encode(self, record: Mapping[str, Any]) -> bytes:
        """One record as the bytes to append (including its line terminator)."""

    async def _spill(self) -> None:
        """Hand the buffer to the file; the caller holds the lock."""
        if not self._chunks:
            return
        file = self._usable()
        data = b"".join(self._chunks)
        self._chunks, self._buffered = [], 0
        try:
            await file.write_bytes(data, self._offset)
        except IO_ERRORS as exc:
            raise self._fail(sink_error(exc, self.path, "cannot write")) from exc
        except BaseException as exc:  # cancelled mid-write: the tail is unknown now
            self._fail(exc)
            raise
        self._offset += len(data)
