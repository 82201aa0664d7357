"""The ``futures`` engine: ``requests`` on a ``ThreadPoolExecutor``, awaited with
``asyncio.wrap_future``; one ``requests.Session`` per pool thread."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from crawler.engines._requests import ThreadedEngine, perform
from crawler.engines._sessions import Job, new_session
from crawler.models import Response

__all__ = ["FuturesEngine"]


class FuturesEngine(ThreadedEngine):
    def _start(self) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=self._options.concurrency, thread_name_prefix="crawler-futures"
        )
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def _stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = new_session(self._options, self._jar)
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _run(self, job: Job) -> Response:
        return perform(self._session(), job)

    def _submit(self, job: Job) -> asyncio.Future[Response]:
        return asyncio.wrap_future(self._executor.submit(self._run, job))
