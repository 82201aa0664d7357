"""One crawl per output folder: an exclusive lock held for as long as a crawl runs.

Two crawls of one folder (two terminals, an overlapping cron job) would free
each other's leases and tear each other's lines in the same files. The lock is
``flock`` on a file in the folder, so the kernel frees it when the process ends,
however it ends (``kill -9`` too), and a resume needs no cleanup. The file names
its holder (process id and host) for the message the next crawl prints; it is
read only, never trusted: the lock is the flock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType

from crawler.errors import AlreadyRunning

__all__ = ["FolderLock"]


class FolderLock:
    """``with FolderLock(path, folder):`` or ``AlreadyRunning`` at once, naming the holder.

    ``folder`` is what the message calls the locked thing, ``by`` what holds it.
    Opening the lock file creates it if needed and writes nothing until the lock is
    held, so a crawl that is refused leaves every file as it was."""

    def __init__(self, path: Path, folder: Path | str, *, by: str = "crawl") -> None:
        self.path = path
        self.folder = folder
        self.by = by
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise AlreadyRunning(
                f"{self.folder} is in use by another {self.by} ({holder}); "
                "wait for it to finish or stop it"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # frees the flock; the file stays, naming nobody who holds it


def _read(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        if text:
            return text
    return "its process is unknown"
