"""The lifecycle every resource shares: ``async with`` opens, ``aclose()`` closes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

__all__ = ["AsyncResource", "Resource"]


@runtime_checkable
class Resource(Protocol):
    """What every seam's protocol shares: ``async with`` and ``aclose()``."""

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class AsyncResource(ABC):
    """``async with resource:`` calls ``open()`` then, whatever happens, ``aclose()``.

    Both must be idempotent, and a closed resource must open again.
    """

    async def open(self) -> None:  # noqa: B027 - most resources have nothing to open
        """Acquire what the resource needs (sessions, threads, files)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release everything ``open()`` acquired."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
