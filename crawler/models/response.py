"""Responses: status, headers and the whole body, decoded on demand."""

from __future__ import annotations

import dataclasses
import json as jsonlib
from dataclasses import dataclass, field
from typing import Any

from crawler.errors import HTTPStatusError
from crawler.models.encoding import decode_html
from crawler.models.request import Headers, Request, make_headers

__all__ = ["Response"]


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP response, body fully read (and capped at the request's ``max_bytes``).

    ``url`` is the final URL; ``request_url`` the one the caller asked for, which
    differs when redirects were followed (their responses are in ``history``).
    ``from_cache``: the server answered 304 to a revalidation and the stored
    status, headers (updated by the 304's) and body are given instead.
    ``rendered_from``: the body is the DOM a headless browser rendered from this
    response, the document as the server sent it (validators, digests and
    archives are of that one); None when nothing was rendered.
    """

    request: Request
    status: int
    headers: Headers
    body: bytes = b""
    reason: str = ""
    url: str = ""
    elapsed: float = 0.0
    history: tuple[Response, ...] = ()
    from_cache: bool = False
    rendered_from: Response | None = field(default=None, repr=False)
    # Keeps the body's share of the engine's body memory taken while any copy of
    # this response lives (see engines/_slots.py); None for small bodies.
    hold: object = field(default=None, repr=False, compare=False)
    _decoded: list[tuple[str, str]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.url:
            object.__setattr__(self, "url", self.request.url)
        object.__setattr__(self, "headers", make_headers(self.headers))

    @property
    def request_url(self) -> str:
        return self.history[0].request.url if self.history else self.request.url

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def is_redirect(self) -> bool:
        return self.status in (301, 302, 303, 307, 308) and "location" in self.headers

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``""`` when absent)."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    def _decode(self) -> tuple[str, str]:
        if not self._decoded:
            self._decoded.append(decode_html(self.body, self.headers.get("content-type")))
        return self._decoded[0]

    @property
    def encoding(self) -> str:
        """The encoding ``text`` was decoded with: header charset, BOM, ``<meta>``, detection."""
        return self._decode()[0]

    @property
    def text(self) -> str:
        return self._decode()[1]

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def raise_for_status(self) -> Response:
        """Return the response, or raise ``HTTPStatusError`` for a 4xx or 5xx status."""
        if self.status >= 400:
            kind = "client error" if self.status < 500 else "server error"
            raise HTTPStatusError(
                f"{self.status} {self.reason} ({kind}) for {self.url}".replace("  ", " "),
                response=self,
            )
        return self

    def replace(self, **changes: Any) -> Response:
        return dataclasses.replace(self, **changes)
