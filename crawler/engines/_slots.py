"""Slots for large bodies: a bound on the memory the responses in flight hold.

``max_bytes`` caps one body, but not how many bodies near the cap are held at
once: 64 requests reading 9 MB each hold 600 MB, whatever the cap. So a body
may grow to ``LARGE_BODY`` bytes freely, and past that only while it holds one
of a fixed number of slots. A slot is given back when every ``Response`` holding
its body is garbage (the caller is done with it) or when the read fails. An engine's bodies
then hold at most ``concurrency * LARGE_BODY + slots * max_bytes``.

A read waiting for a slot waits inside its request's deadline. Nothing that
holds a slot waits for anything else, so slots cannot deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable

__all__ = ["LARGE_BODY", "AsyncSlots", "Slot", "ThreadSlots", "slot_count"]

LARGE_BODY = 256 * 1024  # bytes any body may hold without a slot


def slot_count(body_memory: int, max_bytes: int) -> int:
    """How many bodies of up to ``max_bytes`` fit in ``body_memory`` (at least one)."""
    return max(1, body_memory // max(max_bytes, 1))


class Slot:
    """One large body's right to grow. The responses holding the body keep the slot
    (``Response.hold``; copies made by ``replace`` share it), and it is given back
    when the last of them is garbage, or at once by ``release`` (a failed read)."""

    __slots__ = ("__weakref__", "_finalizer")

    def __init__(self, give_back: Callable[[], None]) -> None:
        self._finalizer = weakref.finalize(self, give_back)

    def release(self) -> None:
        self._finalizer()  # runs give_back once, whoever calls first


class AsyncSlots:
    """Slots for an engine that reads bodies on the event loop."""

    def __init__(self, count: int) -> None:
        self._semaphore = asyncio.Semaphore(count)

    async def take(self) -> Slot:
        await self._semaphore.acquire()
        loop = asyncio.get_running_loop()

        def give_back() -> None:  # the response may be freed on any thread, or after close
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._semaphore.release)

        return Slot(give_back)


class ThreadSlots:
    """Slots for engines that read bodies in worker threads."""

    def __init__(self, count: int) -> None:
        self._semaphore = threading.Semaphore(count)

    def take(self, timeout: float) -> Slot | None:
        """A slot, or None when none came free within ``timeout`` seconds."""
        if not self._semaphore.acquire(timeout=max(timeout, 0.0)):
            return None
        return Slot(self._semaphore.release)
