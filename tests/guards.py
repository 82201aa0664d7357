"""Hang guards: generous wall-clock bounds that catch a test that hangs, or that waits
out something it should have cut short (a server's HANG of 60 s, a 30 s crawl delay,
an hour's Retry-After). They are not measurements: what a test checks about time is
checked on an injected clock, or observed directly (hits, requests in flight, bytes
sent), and a guard is far enough from what a working test takes that a loaded
machine never trips it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

__all__ = ["LATE", "WAIT", "hang_guard"]

# Seconds a loaded machine may add to a deadline before the request ends: far more
# than it ever does, far less than the HANG of the servers these guards stand against.
LATE = 5.0
# Seconds a test waits for a signal that, when the code works, comes at once (a
# request reaching a fake or a server, a task reaching its wait): only a hang waits longer.
WAIT = 30.0


@contextlib.contextmanager
def hang_guard(seconds: float) -> Iterator[None]:
    """Fail when the block took ``seconds`` or longer (checked as it ends)."""
    started = time.monotonic()
    yield
    took = time.monotonic() - started
    assert took < seconds, f"took {took:.1f} s, past the {seconds:g} s hang guard"
