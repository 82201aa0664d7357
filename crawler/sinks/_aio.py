"""The caio context the sinks write through, with no kernel thread polling for work.

caio's io_uring backend asks for ``SQPOLL`` where the kernel allows it: a kernel
thread then polls the submission queue for 100 ms after each write. A crawl writes
and commits more often than that, so the thread never slept and took a fifth of the
crawl's CPU on a 2-core machine (benchmarks/README.md). Without it, a write costs one
``io_uring_enter`` call. Other backends are used as caio picks them.

Each open file (or pages sink) owns its context and closes it with the file, so no
context outlives the event loop it was made on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import caio

__all__ = ["file_context"]


def file_context() -> caio.AsyncioContext:
    """A new context on the running loop; the caller closes it."""
    loop = asyncio.get_running_loop()
    uring = getattr(caio, "linux_uring_asyncio", None)
    options: dict[str, Any] = {}
    if uring is not None and caio.AsyncioContext is uring.AsyncioContext:
        options["sqpoll"] = False
    return caio.AsyncioContext(loop=loop, **options)
