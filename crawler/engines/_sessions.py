"""The thread engines' sessions: ``requests`` sessions whose connections go through
the address guard, and the job a worker thread performs on one of them.

urllib3 reuses connections across requests, so each worker thread records which
Job it is performing (``running``); a connection then tells that Job it carries
it (so ``abort`` can shut its socket) and opens new sockets through the Job's guard.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
import urllib3.connection
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar

from crawler.engines._slots import Slot, ThreadSlots
from crawler.engines.base import EngineOptions
from crawler.engines.guard import AddressGuard, AddressRefused
from crawler.models import Request, Timeouts

__all__ = ["Job", "new_jar", "new_session", "running"]


@dataclass(slots=True)
class Job:
    """One request handed to a worker thread; ``abandoned`` is set when the caller gave up."""

    request: Request
    timeouts: Timeouts
    deadline: float
    guard: AddressGuard | None = None  # where the job's connections may go
    slots: ThreadSlots | None = None  # for bodies past LARGE_BODY
    slot: Slot | None = None  # the one this job's body holds
    abandoned: threading.Event = field(default_factory=threading.Event)
    connection: Any = None  # the urllib3 connection in use, while the exchange runs
    lock: threading.Lock = field(default_factory=threading.Lock)

    def abort(self) -> None:
        """Called from the event loop when the caller gives up: shut the socket, so
        the worker thread stops waiting on it now, not one read timeout later."""
        with self.lock:
            sock = getattr(self.connection, "sock", None)
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


running = threading.local()  # the Job a worker thread is performing


class _Tracked:
    """Tells the running Job which connection carries it (urllib3 reuses them), and
    makes new connections through the Job's address guard, if it has one."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        job = getattr(running, "job", None)
        if job is not None:
            with job.lock:
                job.connection = self
        super().request(*args, **kwargs)  # type: ignore[misc]

    def _new_conn(self) -> socket.socket:
        job: Job | None = getattr(running, "job", None)
        if job is None or job.guard is None:
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        conn: Any = self
        try:
            return job.guard.connect(
                (conn._dns_host, conn.port), conn.timeout, conn.source_address, conn.socket_options
            )
        except AddressRefused:
            raise
        except socket.gaierror as exc:  # the errors urllib3's own _new_conn raises
            raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
        except TimeoutError as exc:
            raise urllib3.exceptions.ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from exc
        except OSError as exc:
            raise urllib3.exceptions.NewConnectionError(
                conn, f"Failed to establish a new connection: {exc}"
            ) from exc


class _HTTPConnection(_Tracked, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_Tracked, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


class _OneExchangeSession(requests.Session):
    """A session that never looks at a redirect target. Even with
    ``allow_redirects=False`` requests reads a 3xx body in full (no cap, no
    deadline) to prepare the next hop; redirects are the middleware's job."""

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None


def new_session(options: EngineOptions, jar: RequestsCookieJar) -> requests.Session:
    session = _OneExchangeSession()
    session.trust_env = False  # same as aiohttp: proxies and netrc only when configured
    session.verify = options.verify_tls
    if not options.verify_tls:  # the caller turned verification off on purpose
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    session.cookies = jar
    if options.proxy:
        session.proxies = {"http": options.proxy, "https": options.proxy}
    adapter = _Adapter(pool_connections=16, pool_maxsize=16, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def new_jar(options: EngineOptions) -> RequestsCookieJar:
    """One cookie jar shared by every thread's session (http.cookiejar locks itself)."""
    jar = RequestsCookieJar()
    for name, value in options.cookies.items():
        jar.set(name, value)
    return jar
