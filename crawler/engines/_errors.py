"""Short, human reasons for connection failures, whichever library raised them.

aiohttp and requests wrap the operating system's error in two or three layers
of their own; users want "Connection refused", not the layers.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl

from yarl import URL

from crawler.engines.guard import AddressGuard, AddressRefused
from crawler.errors import BlockedAddress, ConnectError, ConnectKind, InvalidURL
from crawler.models import Request
from crawler.urls import parse_http_url

__all__ = ["blocked", "connect_error", "connect_reason", "require_http_url", "where"]


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes, contexts and exception arguments, outermost first."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        pending.extend(a for a in current.args if isinstance(a, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)
        os_error = getattr(current, "os_error", None)  # aiohttp's connector errors
        if isinstance(os_error, BaseException):
            pending.append(os_error)
    return seen


def require_http_url(request: Request, guard: AddressGuard | None = None) -> URL:
    """Refuse anything but an absolute http(s) URL before any connection is made,
    and, with a ``guard``, a host spelled as a legacy numeric IPv4 that it refuses;
    the URL, parsed (a client given it need not parse it again)."""
    try:
        url = parse_http_url(request.url)
    except ValueError as exc:
        raise InvalidURL(str(exc), request=request) from None
    if guard is not None:
        try:
            guard.check_literal(url.raw_host or "", url.port or 0)
        except AddressRefused as exc:
            raise BlockedAddress(exc.reason, request=request) from exc
    return url


def blocked(exc: BaseException, request: Request) -> BlockedAddress | None:
    """``BlockedAddress`` if the guard's refusal is somewhere in ``exc``'s chain."""
    for error in _chain(exc):
        if isinstance(error, AddressRefused):
            return BlockedAddress(error.reason, request=request)
    return None


def where(request: Request) -> str:
    """``host:port`` of the request, for messages."""
    url = URL(request.url)
    return f"{url.host}:{url.port}"


def connect_error(exc: BaseException, request: Request) -> ConnectError:
    """A ``ConnectError`` saying what went wrong: ``TLS: certificate verify failed``,
    ``DNS: Name or service not known``, ``Connection refused``…"""
    kind, reason = connect_reason(exc)
    return ConnectError(f"cannot connect to {where(request)}: {reason}", request=request, kind=kind)


def connect_reason(exc: BaseException) -> tuple[ConnectKind, str]:
    chain = _chain(exc)
    for error in chain:
        # aiohttp's certificate error subclasses ssl's without its attributes.
        if isinstance(error, ssl.SSLError | ssl.CertificateError) and (
            detail := getattr(error, "verify_message", None) or getattr(error, "reason", None)
        ):
            return "tls", f"TLS: {detail}"
    for error in chain:
        if isinstance(error, socket.gaierror):
            return "dns", f"DNS: {error.strerror or error}"
    for error in chain:
        if isinstance(error, OSError) and isinstance(error.errno, int) and error.errno > 0:
            kind: ConnectKind = "refused" if error.errno == errno.ECONNREFUSED else "connect"
            return kind, os.strerror(error.errno)
        if isinstance(error, OSError) and error.strerror:
            return "connect", error.strerror
    return "connect", str(exc) or type(exc).__name__
