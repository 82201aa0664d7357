"""The engine seam: send one request, get one response.

An engine performs exactly one HTTP exchange per ``send``: it follows no
redirects, retries nothing and never waits for politeness. Those are middleware,
so they behave the same whichever engine runs underneath.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from crawler.engines._slots import slot_count
from crawler.engines.guard import AddressGuard
from crawler.models import DEFAULT_MAX_BYTES, Request, Resource, Response

__all__ = ["Engine", "EngineOptions"]


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Connection-level settings every engine honours."""

    concurrency: int = 64
    verify_tls: bool | str = True  # a str: the PEM bundle of the CAs to trust instead
    proxy: str | None = None
    cookies: Mapping[str, str] = field(default_factory=dict)
    guard: AddressGuard | None = None  # set: connect only to addresses it permits
    # Bytes that bodies past LARGE_BODY (256 KiB) may hold at once; None: no limit.
    body_memory: int | None = None
    max_bytes: int = DEFAULT_MAX_BYTES  # the largest body the engine's requests accept

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency!r}")
        if self.body_memory is not None and self.body_memory < 1:
            raise ValueError(f"body_memory must be at least 1, got {self.body_memory!r}")
        if self.guard is not None and self.proxy:
            raise ValueError(
                "block_private cannot be enforced through a proxy: the proxy makes the connections"
            )

    @property
    def large_bodies(self) -> int | None:
        """How many bodies may grow past ``LARGE_BODY`` at once; None: no limit."""
        if self.body_memory is None:
            return None
        return slot_count(self.body_memory, self.max_bytes)


@runtime_checkable
class Engine(Resource, Protocol):
    """Sends one request. Opened with ``async with``; closed with ``aclose()``."""

    async def send(self, request: Request) -> Response:
        """Perform one HTTP exchange and return the response, whatever its status.

        Contract, identical for every engine:
        - the request's ``timeouts`` are enforced here: ``connect``, ``read`` and a
          wall-clock ``total`` that covers the body (``None`` means the defaults);
        - the body is read in full, decompressed, and capped at ``max_bytes``
          after decompression (over the cap: ``ProtocolError``); with
          ``options.large_bodies``, a body past 256 KiB waits for one of that many
          slots (see ``_slots.py``), within the request's deadline;
        - a 3xx is returned as it is, never followed;
        - with ``options.guard``, every address is checked where the connection is
          made, after DNS; a refusal is ``BlockedAddress`` and nothing is sent;
        - every failure is a ``FetchError`` subclass with the library's error as
          ``__cause__``; cancellation propagates untouched.
        """
        ...
