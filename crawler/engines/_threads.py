"""The ``threads`` engine: worker threads started here, fed by a queue,
answering through ``loop.call_soon_threadsafe``; one ``requests.Session`` each."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading

import requests

from crawler.engines._requests import Abandoned, ThreadedEngine, perform
from crawler.engines._sessions import Job, new_session
from crawler.models import Response

__all__ = ["ThreadsEngine"]

_Item = tuple[Job, asyncio.AbstractEventLoop, "asyncio.Future[Response]"]


class ThreadsEngine(ThreadedEngine):
    """Threads are started on demand, up to ``concurrency``, and live until close."""

    def _start(self) -> None:
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def _stop(self) -> None:
        # Requests still queued are never sent: cancelled here, their callers hear that
        # the engine closed (ThreadedEngine.send); the threads finish what they hold.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                job, loop, future = item
                job.abandoned.set()
                with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                    loop.call_soon_threadsafe(future.cancel)
        for _ in self._threads:
            self._queue.put(None)

    def _submit(self, job: Job) -> asyncio.Future[Response]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Response] = loop.create_future()
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._options.concurrency:
                thread = threading.Thread(
                    target=self._work,
                    args=(self._queue,),
                    name=f"crawler-threads-{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        self._queue.put((job, loop, future))
        return future

    def _work(self, jobs: queue.SimpleQueue[_Item | None]) -> None:
        """Serve ``jobs`` until told to stop; bound to the queue of the opening that
        started it, so a reopened engine never inherits its threads."""
        session = new_session(self._options, self._jar)
        try:
            while (item := jobs.get()) is not None:
                _serve(session, *item)
                item = None  # the idle thread must not keep the last response alive
                with self._lock:
                    self._idle += 1
        finally:
            session.close()


def _serve(
    session: requests.Session,
    job: Job,
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Response],
) -> None:
    if job.abandoned.is_set():
        return
    try:
        response = perform(session, job)
    except Abandoned:
        return
    except BaseException as exc:  # every outcome goes back to the caller
        _settle(loop, future, None, exc)
    else:
        _settle(loop, future, response, None)


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Response],
    response: Response | None,
    exc: BaseException | None,
) -> None:
    def apply() -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(response)  # type: ignore[arg-type]

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(apply)
