"""Parse processes, each fed through a pipe of its own with batches of pages.

``concurrent.futures``' process pool costs the crawl's process about 0.3 ms of CPU a
page: a feeder thread, a manager thread, a lock and a wake-up of each per call. Here
the event loop writes the pages waiting to the first idle process in one message and
reads its answers when its pipe turns readable: a pickle, a write and a read each way
per batch, no thread. A page that kills its process (libxml2 crashing, the OOM killer)
fails alone: its batch is parsed again a page at a time, in a new process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import multiprocessing
import os
import pickle
import struct
import traceback
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from crawler.errors import ParseError
from crawler.parse import Page

__all__ = ["BATCH_BYTES", "BATCH_PAGES", "STILLBORN_MAX", "ParsePool"]

BATCH_PAGES = 16  # pages a process is given at once, when that many wait
BATCH_BYTES = 4 << 20  # and their bodies' bytes; a bigger page goes alone
PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size
STILLBORN_MAX = 3
_READ_BYTES = 1 << 20
_LENGTH = struct.Struct("!Q")
_READY = "ready"  # a process's first message: it unpickled the job

Job = Callable[[Page], Any]
_Answer = tuple[bool, Any]  # (True, what the job returned) or (False, a ParseError)


class _Waiting:
    __slots__ = ("alone", "future", "page")

    def __init__(self, page: Page, future: asyncio.Future[Any], alone: bool) -> None:
        self.page, self.future, self.alone = page, future, alone


class _Process:
    """One parse process and the crawl's ends of its two pipes: pages go down one,
    answers come up the other, each message a length and a pickle (``_frame``)."""

    __slots__ = ("batch", "pages", "process", "ready", "received", "replies")

    def __init__(self, job: Job) -> None:
        # spawn, not fork: the crawl's process runs threads (the engine's, SQLite's)
        # that a forked child would inherit mid-flight.
        context = multiprocessing.get_context("spawn")
        their_pages, self.pages = context.Pipe(duplex=False)
        self.replies, their_replies = context.Pipe(duplex=False)
        self.process = context.Process(target=_serve, args=(their_pages, their_replies, job),
                                       daemon=True, name="crawl-parse")  # fmt: skip
        self.process.start()
        # Theirs only there: the process reads EOF when the crawl's end closes, and the
        # crawl reads EOF when the process ends.
        their_pages.close()
        their_replies.close()
        with contextlib.suppress(OSError, AttributeError):  # Linux; at most pipe-max-size
            # A batch fits at once: the loop's write does not wait while the process
            # drains a 64 KiB pipe page by page.
            fcntl.fcntl(self.pages.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self.batch: list[_Waiting] = []
        self.received = bytearray()
        self.ready = False  # it said so: it holds the job and reads pages

    def send(self, batch: list[_Waiting]) -> None:
        # The process is idle, reading: the write blocks only while it drains.
        self.batch = batch
        _write(self.pages.fileno(), _frame([w.page for w in batch]))

    def receive(self) -> list[Any] | None:
        """The answers, once all of them are here; called when the pipe is readable, so
        one read does not block. Raises ``EOFError`` when the process has ended."""
        chunk = os.read(self.replies.fileno(), _READ_BYTES)
        if not chunk:
            raise EOFError
        self.received += chunk
        message = _unframe(self.received)
        if message == _READY:
            self.ready = True
            message = _unframe(self.received)
        return message

    def close(self) -> None:
        self.pages.close()
        self.replies.close()

    def ended(self) -> str:
        """How the process ended, in words: it closed its end of the pipe, so it has."""
        self.process.join(timeout=5)
        code = self.process.exitcode
        return "is still running" if code is None else (
            f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        )  # fmt: skip


class ParsePool:
    """Runs ``job`` on pages in ``workers`` processes, started at the first page.

    ``parse`` raises ``ParseError`` for a page the job fails on or whose process dies,
    and for every page once processes have died as they started, ``STILLBORN_MAX`` in a
    row (a site module the processes cannot import, say): each page is not worth a new
    process then."""

    def __init__(self, job: Job, workers: int, *, site: str = "") -> None:
        self._job, self._site = job, site
        self._slots: list[_Process | None] = [None] * workers
        self._waiting: deque[_Waiting] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._stillborn = 0  # processes in a row that died before their first answer
        self._broken: str | None = None

    async def parse(self, page: Page) -> Any:
        if self._closed:
            raise RuntimeError("the parse pool is closed")
        if self._broken is not None:
            raise ParseError(self._broken, url=page.url, site=self._site)
        self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = self._loop.create_future()
        self._waiting.append(_Waiting(page, future, alone=False))
        self._feed()
        return await future

    def close(self) -> None:
        """End every process (each reads EOF, or fails its next write, and exits) and
        cancel the pages still waiting."""
        self._closed = True
        for index, slot in enumerate(self._slots):
            if slot is not None:
                self._drop(index, slot)
                for waiting in slot.batch:
                    waiting.future.cancel()
        for waiting in self._waiting:
            waiting.future.cancel()
        self._waiting.clear()

    def _feed(self) -> None:
        for index, slot in enumerate(self._slots):
            if not self._waiting:
                return
            if slot is None:
                slot = self._slots[index] = _Process(self._job)
                assert self._loop is not None
                self._loop.add_reader(slot.replies.fileno(), self._answered, index, slot)
            if not slot.batch:
                self._send(index, slot)

    def _send(self, index: int, slot: _Process) -> None:
        batch = self._take()
        if not batch:
            return
        try:
            slot.send(batch)
        except OSError:
            self._died(index, slot)

    def _take(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        size = 0
        waiting = self._waiting
        while waiting and len(batch) < BATCH_PAGES:
            head = waiting[0]
            if head.future.done():  # its crawl task was cancelled
                waiting.popleft()
                continue
            if batch and (head.alone or size + len(head.page.body) > BATCH_BYTES):
                break
            batch.append(waiting.popleft())
            size += len(head.page.body)
            if head.alone:
                break
        return batch

    def _answered(self, index: int, slot: _Process) -> None:
        try:
            answers = slot.receive()
        except (EOFError, OSError):
            self._died(index, slot)
            return
        except Exception:  # an answer that does not unpickle: never again from this one
            slot.process.kill()
            self._died(index, slot)
            raise
        if slot.ready:
            self._stillborn = 0
        if answers is None:  # more to come
            return
        batch, slot.batch = slot.batch, []
        for waiting, (ok, value) in zip(batch, answers, strict=True):
            if not waiting.future.done():
                if ok:
                    waiting.future.set_result(value)
                else:
                    waiting.future.set_exception(value)
        self._feed()

    def _died(self, index: int, slot: _Process) -> None:
        """A process that died with one page fails that page; with more, they wait
        again, at the front, to be parsed one at a time: only the culprit fails. One
        that died before it was ready parsed nothing: its pages wait again as they were."""
        self._drop(index, slot)
        how = slot.ended()
        batch = [w for w in slot.batch if not w.future.done()]
        if not slot.ready:
            self._stillborn += 1
            self._waiting.extendleft(reversed(batch))
            if self._stillborn >= STILLBORN_MAX:
                self._break(f"parse processes die as they start: the last one {how}")
                return
        elif len(batch) == 1:
            page = batch[0].page
            batch[0].future.set_exception(ParseError(
                f"the parse process {how} while parsing this page", url=page.url, site=self._site
            ))  # fmt: skip
        elif batch:
            again = [_Waiting(w.page, w.future, alone=True) for w in reversed(batch)]
            self._waiting.extendleft(again)
        if not self._closed:
            self._feed()

    def _break(self, why: str) -> None:
        self._broken = why
        for waiting in self._waiting:
            if not waiting.future.done():
                waiting.future.set_exception(ParseError(why, url=waiting.page.url, site=self._site))
        self._waiting.clear()

    def _drop(self, index: int, slot: _Process) -> None:
        self._slots[index] = None
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(slot.replies.fileno())
        slot.close()


def _serve(pages: Connection, replies: Connection, job: Job) -> None:
    """A parse process: answer each batch until the crawl's end of the pipe closes."""
    received = bytearray()
    try:
        _write(replies.fileno(), _frame(_READY))
    except OSError:
        return
    while True:
        try:
            batch: list[Page] | None = None
            while batch is None:
                chunk = os.read(pages.fileno(), _READ_BYTES)
                if not chunk:
                    return
                received += chunk
                batch = _unframe(received)
            _write(replies.fileno(), _frame([_answer(job, page) for page in batch]))
        except OSError:  # the crawl ended
            return


def _frame(value: Any) -> bytes:
    data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _unframe(received: bytearray) -> Any | None:
    """The value of the first whole message in ``received``, taken out of it; ``None``
    while it is not all there."""
    if len(received) < _LENGTH.size:
        return None
    end = _LENGTH.size + _LENGTH.unpack_from(received)[0]
    if len(received) < end:
        return None
    with memoryview(received) as view, view[_LENGTH.size : end] as message:
        value = pickle.loads(message)
    del received[:end]
    return value


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _answer(job: Job, page: Page) -> _Answer:
    try:
        return True, job(page)
    except ParseError as exc:
        return False, exc
    except Exception as exc:  # the job's own failure, as a ParseError: that one pickles
        return False, ParseError(f"{type(exc).__name__}: {exc}", url=page.url, site="",
                                 details="".join(traceback.format_exception(exc)))  # fmt: skip
