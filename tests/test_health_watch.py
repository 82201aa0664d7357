"""Watch mode keeps checking through targets that hang, answer garbage, or go
away and come back; runs never overlap and the history stays bounded."""

from __future__ import annotations

import asyncio
import gc
import itertools
import re
import socket
import socketserver
import threading
import tracemalloc
from collections.abc import AsyncIterator, Callable

import pytest

from crawler.health.history import History
from crawler.health.result import HealthResult
from crawler.health.targets import Target
from crawler.health.watch import watch
from tests.server import LoopbackServer


class Runs:
    """Collects each run's results and lets a test wait for the n-th run."""

    def __init__(self, *, keep: bool = True) -> None:
        self.count = 0
        self.results: list[list[HealthResult]] = []
        self._keep = keep
        self._changed = asyncio.Condition()

    def __call__(self, results: list[HealthResult]) -> None:
        self.count += 1
        if self._keep:
            self.results.append(results)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def reach(self, count: int, *, guard: float = 30) -> None:
        """Wait for the ``count``-th run; ``guard`` catches a hang, it times nothing."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.count >= count), guard)

    def states(self, name: str) -> str:
        return "".join(
            "u" if result.ok else "d"
            for run in self.results
            for result in run
            if result.name == name
        )


class _Listener(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # a restart takes the same port at once
    daemon_threads = False
    block_on_close = True  # server_close() waits for the connections being answered

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a check cut short hangs up mid-answer: the client's business, not ours


class RestartableServer:
    """A server on a fixed loopback port that can be stopped and started again, run
    on threads of its own with blocking sockets. Not an asyncio server: on Python
    3.11 closing one can strand a connection accepted in the same moment (its
    transport fails to attach to the closed server and is never closed), which
    the garbage collector then reports."""

    answer: type[socketserver.BaseRequestHandler]

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._listener: _Listener | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        self._listener = _Listener(("127.0.0.1", self.port), self.answer)
        self._thread = threading.Thread(target=self._listener.serve_forever, args=(0.02,))
        self._thread.start()

    async def stop(self) -> None:
        listener, thread, self._listener, self._thread = self._listener, self._thread, None, None
        if listener is not None and thread is not None:
            await asyncio.to_thread(listener.shutdown)
            await asyncio.to_thread(listener.server_close)
            await asyncio.to_thread(thread.join)


class _Garbage(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"\x00\xff\xfeSSH-2.0-garbage\r\n\x1b[31m\r\n\r\n")


class GarbageServer(RestartableServer):
    """Answers every connection with bytes that are not HTTP, then hangs up."""

    answer = _Garbage


class _Up(socketserver.StreamRequestHandler):
    timeout = 5  # a client that never sends its request cannot hold stop() up longer

    def handle(self) -> None:
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # the request line and headers; GET has no body
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\nup"
        )


class FlappingServer(RestartableServer):
    """Answers every request with a 200 "up" while started; stopped, nothing listens."""

    answer = _Up


@pytest.fixture
async def garbage_port() -> AsyncIterator[int]:
    server = GarbageServer()
    await server.start()
    try:
        yield server.port
    finally:
        await server.stop()


async def run_watch(
    targets: list[Target], scenario: Callable[[Runs], object], *, interval: float,
    history: History, engine: str = "aiohttp", keep: bool = True,
) -> Runs:  # fmt: skip
    runs, stop = Runs(keep=keep), asyncio.Event()
    watcher = asyncio.create_task(
        watch(targets, interval=interval, history=history, stop=stop, on_run=runs, engine=engine)
    )
    try:
        await scenario(runs)  # type: ignore[misc]
    finally:
        stop.set()
        count = await asyncio.wait_for(watcher, 30)
    assert count == runs.count
    return runs


async def test_watch_survives_hanging_garbage_and_flapping_targets(
    engine: str, server: LoopbackServer, garbage_port: int
) -> None:
    flapping = FlappingServer()
    await flapping.start()
    targets = [
        Target("hang", server.url("/hang-before-headers"), timeout=0.3),
        Target("garbage", f"http://127.0.0.1:{garbage_port}/", timeout=2),
        Target("flap", f"http://127.0.0.1:{flapping.port}/", timeout=2),
        Target("steady", server.url("/ok"), timeout=2),
    ]

    async def scenario(runs: Runs) -> None:
        await runs.reach(2)
        await flapping.stop()
        await runs.reach(runs.count + 2)
        await flapping.start()
        await runs.reach(runs.count + 2)

    history = History(size=50)
    try:
        runs = await run_watch(targets, scenario, interval=0.05, history=history, engine=engine)
    finally:
        await flapping.stop()
    assert re.fullmatch("u+d+u+", runs.states("flap")), runs.states("flap")
    assert set(runs.states("steady")) == {"u"}
    assert set(runs.states("hang") + runs.states("garbage")) == {"d"}
    last = {result.name: result for result in runs.results[-1]}
    assert last["hang"].error == "timeout"
    assert last["garbage"].error in ("protocol", "connect")
    by_name = {target.name: target for target in history.targets()}
    assert by_name["flap"].runs == len(runs.results)
    assert by_name["flap"].failures == runs.states("flap").count("d")


async def test_runs_never_overlap_when_a_check_outlasts_the_interval(
    server: LoopbackServer,
) -> None:
    targets = [Target("slow", server.url("/slow?delay=0.2"))]

    async def scenario(runs: Runs) -> None:
        await runs.reach(4)

    runs = await run_watch(targets, scenario, interval=0.01, history=History())
    results = [run[0] for run in runs.results]
    for before, after in itertools.pairwise(results):
        assert after.checked_at >= before.checked_at + before.latency


async def test_stop_ends_a_run_in_progress_at_once(server: LoopbackServer) -> None:
    targets = [Target("hang", server.url("/hang-before-headers"), timeout=30)]
    runs, stop = Runs(), asyncio.Event()
    watcher = asyncio.create_task(
        watch(targets, interval=60, history=History(), stop=stop, on_run=runs)
    )
    hits = server.hits_for("/hang-before-headers")
    assert await asyncio.to_thread(server.wait_for_hits, "/hang-before-headers", hits + 1)
    stop.set()
    assert await asyncio.wait_for(watcher, 5) == 0


async def test_memory_stays_bounded_over_many_runs(server: LoopbackServer) -> None:
    targets = [Target(f"t{i}", server.url(f"/ok?t={i}")) for i in range(5)]
    history = History(size=20)
    snapshots: list[tracemalloc.Snapshot] = []
    # The loopback server shares the process and logs every request: not ours to count.
    theirs = [
        tracemalloc.Filter(False, "*/tests/server.py", all_frames=True),
        tracemalloc.Filter(False, "*/aiohttp/web_*.py", all_frames=True),
        tracemalloc.Filter(False, tracemalloc.__file__),  # the first snapshot itself
    ]

    async def scenario(runs: Runs) -> None:
        # What is still alive: garbage a collection would free is not a leak, and how
        # much of it waits depends on what earlier tests left in the heap.
        await runs.reach(30)
        gc.collect()
        snapshots.append(tracemalloc.take_snapshot().filter_traces(theirs))
        await runs.reach(230, guard=300)  # 1,000 checks, every allocation traced
        gc.collect()
        snapshots.append(tracemalloc.take_snapshot().filter_traces(theirs))

    # Frames enough to see the server's under aiohttp's and yarl's; each frame more
    # makes every traced allocation dearer (12 made the test three times as slow).
    tracemalloc.start(4)
    try:
        await run_watch(targets, scenario, interval=0.0, history=history, keep=False)
    finally:
        tracemalloc.stop()
    assert all(len(target.samples) == 20 for target in history.targets())
    assert all(target.runs >= 230 for target in history.targets())
    before, after = (sum(trace.size for trace in s.traces) for s in snapshots)
    # About 40 KB stays alive anyway; keeping each check's result would add 200 KB.
    assert after - before < 128 * 1024, f"memory grew by {after - before} bytes over 200 runs"
