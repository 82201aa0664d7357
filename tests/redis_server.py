"""A throwaway ``redis-server`` on a free loopback port, for the Redis frontier tests.

Nothing is persisted (no RDB, no AOF) and its files live in a temporary
directory, so a test run never touches a Redis the machine already has.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import Self

SKIP_REASON = "redis-server is not installed (scripts/setup installs it)"
STARTUP = 10.0  # seconds a fresh server gets to answer PING


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def answers_ping(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``with RedisServer() as server:`` runs one ``redis-server`` until the block ends."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or redis_server_binary()
        if found is None:
            raise FileNotFoundError(SKIP_REASON)
        self.binary = found
        self.port = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> Self:
        self._dir = tempfile.TemporaryDirectory(prefix="redis-test-")
        self.port = _free_port()
        # Between _free_port and the bind another process could take the port;
        # then the server exits at once and the wait below says so.
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", self._dir.name]
        args += ["--daemonize", "no", "--loglevel", "warning"]
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP
        while not answers_ping(self.port):
            if self._process.poll() is not None:
                output = self._process.stdout.read().decode() if self._process.stdout else ""
                self.__exit__(None, None, None)
                raise RuntimeError(f"redis-server exited at start: {output}")
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"redis-server did not answer PING in {STARTUP} s")
            time.sleep(0.02)  # readiness polling, not synchronisation between tests
        return self

    def stop(self) -> None:
        """Terminate the server (a test may do it early, to see the client fail)."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def flushall(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(b"FLUSHALL\r\n")
            if not conn.recv(16).startswith(b"+OK"):
                raise RuntimeError("redis-server refused FLUSHALL")
