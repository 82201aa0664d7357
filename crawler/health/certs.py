"""The server certificate behind ``cert_min_days``: its expiry date even when it
does not verify, since an expired or self-signed certificate is exactly what a
health check has to report rather than fail on."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509

from crawler.engines import connect_reason
from crawler.errors import ConnectError, FetchTimeout

__all__ = ["Certificate", "read_certificate"]

_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Certificate:
    """The leaf certificate a server presented. ``verify_error`` is OpenSSL's reason
    when the chain or host name did not verify, None when it did or was not checked."""

    not_after: datetime  # aware, UTC
    days_left: float  # negative once expired
    subject: str  # RFC 4514
    verify_error: str | None


async def read_certificate(
    host: str,
    port: int = 443,
    *,
    timeout: float = 10.0,
    verify: bool | str = True,
    server_name: str | None = None,
    now: datetime | None = None,
) -> Certificate:
    """The certificate ``host:port`` presents for ``server_name`` (default ``host``).

    ``verify`` is True for the system trust store, the path of a PEM CA bundle to
    trust instead, or False to read the dates only. A certificate that fails
    verification is read over a second, unverified handshake. ``timeout`` bounds the
    whole call; failures raise ``FetchTimeout`` or ``ConnectError`` naming host:port.
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = server_name or host
    verify_error: str | None = None
    try:
        async with asyncio.timeout(timeout):
            try:
                der = await _peer_certificate(host, port, name, _context(verify), timeout, where)
            except ssl.SSLCertVerificationError as exc:
                verify_error = exc.verify_message or str(exc)
                der = await _peer_certificate(host, port, name, _context(False), timeout, where)
    except TimeoutError as exc:
        raise FetchTimeout(
            f"reading the certificate of {where}: timeout after {timeout:g}s", phase="connect"
        ) from exc
    try:  # cryptography is stricter than OpenSSL about some encodings
        cert = x509.load_der_x509_certificate(der)
        not_after = cert.not_valid_after_utc
    except ValueError as exc:
        raise ConnectError(f"unreadable certificate from {where}: {exc}", kind="tls") from exc
    days_left = (not_after - (now or datetime.now(UTC))).total_seconds() / _DAY
    return Certificate(not_after, days_left, cert.subject.rfc4514_string(), verify_error)


async def _peer_certificate(
    host: str, port: int, name: str, context: ssl.SSLContext, timeout: float, where: str
) -> bytes:
    """The DER certificate from one handshake; verification failures pass through
    untranslated so the caller can retry without verifying."""
    try:
        _, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=name, ssl_handshake_timeout=timeout
        )
    except ssl.SSLCertVerificationError:
        raise
    except OSError as exc:  # ssl.SSLError included
        kind, reason = connect_reason(exc)
        raise ConnectError(f"cannot connect to {where}: {reason}", kind=kind) from exc
    try:
        ssl_object: ssl.SSLObject = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if der is None:
        raise ConnectError(f"cannot connect to {where}: TLS: no certificate sent", kind="tls")
    return der


@functools.cache
def _context(verify: bool | str) -> ssl.SSLContext:
    """One context per ``verify`` value: building one loads the trust store, which
    blocks, so it happens once per process (a changed CA file needs a restart)."""
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=None if verify is True else verify)
