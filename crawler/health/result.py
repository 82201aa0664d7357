"""What one health check found: the response's vital signs and every condition
that failed, with what was expected and what was seen."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Failure", "HealthResult"]


@dataclass(frozen=True, slots=True)
class Failure:
    """One unmet condition. ``condition`` names it as the config does
    (``status``, ``max_latency_ms``, ``json."db.connected"``, ``header.content-type``,
    ``cert_min_days``); a failed fetch is the condition ``fetch``.

    It reads ``status: expected 2xx, saw 503``. When what was seen is not a thing
    but an absence or an event, ``phrase`` is true and ``seen`` says it in words of
    its own: ``body_contains: expected 'Welcome' in the body, not found in 266 bytes``."""

    condition: str
    expected: str
    seen: str
    phrase: bool = False

    @classmethod
    def no_response(cls, kind: str) -> Failure:
        """The fetch failed: ``fetch: expected a response, got none (timeout)``."""
        return cls("fetch", "a response", f"got none ({kind})", phrase=True)

    def __str__(self) -> str:
        seen = self.seen if self.phrase else f"saw {self.seen}"
        return f"{self.condition}: expected {self.expected}, {seen}"


@dataclass(frozen=True, slots=True)
class HealthResult:
    """One target, checked once. ``error`` is the kind of fetch failure
    (``timeout``, ``refused``, ``dns``, ``tls``, ``protocol``, ``too_many_redirects``,
    ``too_large``, ``blocked``, ``invalid_url``) when no response came back."""

    name: str
    url: str
    ok: bool
    checked_at: float  # Unix time the check started
    latency: float  # seconds from sending the request to the last byte, redirects included
    status: int | None = None
    size: int | None = None  # body bytes of the final response
    final_url: str | None = None
    error: str | None = None
    message: str = ""  # the fetch error's own words
    failures: tuple[Failure, ...] = ()
    cert_days: float | None = None  # days until the certificate expires (negative: expired)
    cert_expires: float | None = None  # Unix time the certificate expires
    linked_from: tuple[str, ...] = ()  # link checking: pages that link to this URL

    @property
    def reason(self) -> str:
        """Why the check failed, in one line; empty when it passed."""
        if self.ok:
            return ""
        if self.error is not None:
            head = f"{self.error}: {self.message}" if self.message else self.error
            rest = [str(f) for f in self.failures if f.condition != "fetch"]
            return "; ".join([head, *rest])
        return "; ".join(str(failure) for failure in self.failures)
