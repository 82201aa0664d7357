"""Raw page bodies, one file per URL, under a root folder they can never leave."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from pathlib import Path

import caio
from aiofile import AIOFile

from crawler.errors import SinkError
from crawler.models import AsyncResource
from crawler.sinks._aio import file_context
from crawler.sinks._paths import resolve_inside, safe_relative_path
from crawler.sinks.base import IO_ERRORS, sink_error

__all__ = ["PagesSink"]

# Bodies are written here first, then moved into place. No page can land in it: the
# first folder of a page's path is its host, and no host name starts with a dot.
PARTIAL = ".partial"


def _prepare(root: Path, url: str, partial: Path) -> tuple[Path, Path, Path]:
    """Runs in a thread: the relative path, the checked target, a fresh temp name."""
    relative = safe_relative_path(url)
    try:
        target = resolve_inside(root, relative)
    except ValueError as exc:
        raise SinkError(f"refusing to write {url!r} outside {root}: {exc}", path=root) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = partial / secrets.token_hex(8)
    return Path(*relative.parts), target, temp


def _fresh_partial(partial: Path) -> None:
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, exist_ok=True)


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class PagesSink(AsyncResource):
    """Writes each body to ``root / safe_relative_path(url)``.

    Each write goes to a temp file under ``root/.partial/`` and is moved into
    place with ``os.replace``, so a reader (or a crawl resumed after ``kill -9``)
    sees the old file or the new one, never half of one; opening the sink empties
    ``.partial``. Writing the same URL again replaces
    the file, which is what makes a resumed crawl that refetches a page harmless.
    """

    def __init__(self, root: Path | str, *, worker: str | None = None) -> None:
        self.root = Path(root)
        # Workers sharing the folder each empty only their own temp folder on open.
        self.partial = self.root / (PARTIAL if worker is None else f"{PARTIAL}-{worker}")
        self._context: caio.AsyncioContext | None = None

    async def open(self) -> None:
        """Create the root; throw away what a killed run left half-written."""
        try:
            await asyncio.to_thread(_fresh_partial, self.partial)
        except OSError as exc:
            raise sink_error(exc, self.root, "cannot create") from exc
        self._context = self._context or file_context()

    async def aclose(self) -> None:
        """No file stays open between writes; the context they were written through closes."""
        context, self._context = self._context, None
        if context is not None:
            context.close()

    async def write_page(self, url: str, body: bytes) -> Path:
        """Store ``body`` for ``url``; returns the file's path relative to ``root``."""
        target = temp = self.root
        try:
            relative, target, temp = await asyncio.to_thread(_prepare, self.root, url, self.partial)
            file = AIOFile(temp, "xb", context=self._context)
            await file.open()
            try:
                await file.write_bytes(body, 0)
            finally:
                await file.close()  # aiofile syncs the data before closing
            await asyncio.to_thread(os.replace, temp, target)
        except BaseException as exc:
            if temp != self.root:
                await asyncio.shield(asyncio.to_thread(_discard, temp))
            if isinstance(exc, IO_ERRORS) and not isinstance(exc, SinkError):
                raise sink_error(exc, target, "cannot write") from exc
            raise
        return relative
