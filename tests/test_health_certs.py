"""Reading server certificates for ``cert_min_days``: the dates come back even when
verification fails, and network failures map onto the crawler's errors."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from typing import NoReturn

import pytest

from crawler.errors import ConnectError, FetchTimeout
from crawler.health.certs import read_certificate
from tests.guards import LATE, hang_guard
from tests.server import LoopbackServer


async def test_valid_certificate_verifies_against_its_ca(
    tls_valid_server: LoopbackServer, tls_ca_file: str
) -> None:
    cert = await read_certificate("127.0.0.1", tls_valid_server.port, verify=tls_ca_file)
    assert cert.verify_error is None
    assert 29 < cert.days_left < 31
    assert cert.not_after.tzinfo is not None
    assert cert.subject


async def test_expired_certificate_is_read_and_reported(
    tls_expired_server: LoopbackServer, tls_ca_file: str
) -> None:
    cert = await read_certificate("127.0.0.1", tls_expired_server.port, verify=tls_ca_file)
    assert cert.verify_error is not None
    assert "expired" in cert.verify_error
    assert -4 < cert.days_left < -2


async def test_self_signed_expired_certificate_is_read_against_system_store(
    tls_self_signed_expired_server: LoopbackServer,
) -> None:
    cert = await read_certificate("127.0.0.1", tls_self_signed_expired_server.port)
    assert cert.verify_error is not None
    assert any(word in cert.verify_error for word in ("self-signed", "self signed", "issuer")), (
        cert.verify_error
    )
    assert -4 < cert.days_left < -2
    assert cert.subject == "CN=localhost"


async def test_without_verification_only_dates_are_read(
    tls_self_signed_expired_server: LoopbackServer,
) -> None:
    cert = await read_certificate("127.0.0.1", tls_self_signed_expired_server.port, verify=False)
    assert cert.verify_error is None
    assert -4 < cert.days_left < -2


async def test_host_name_mismatch_is_reported_with_the_dates(
    tls_valid_server: LoopbackServer, tls_ca_file: str
) -> None:
    cert = await read_certificate(
        "127.0.0.1", tls_valid_server.port, verify=tls_ca_file, server_name="example.invalid"
    )
    assert cert.verify_error is not None
    assert "example.invalid" in cert.verify_error
    assert 29 < cert.days_left < 31


async def test_now_makes_days_left_exact(
    tls_valid_server: LoopbackServer, tls_ca_file: str
) -> None:
    first = await read_certificate("127.0.0.1", tls_valid_server.port, verify=tls_ca_file)
    now = first.not_after - timedelta(days=7, hours=12)
    cert = await read_certificate("127.0.0.1", tls_valid_server.port, verify=tls_ca_file, now=now)
    assert cert.days_left == 7.5
    assert cert.not_after == first.not_after
    assert cert.not_after.utcoffset() == timedelta(0)


async def test_server_without_tls_is_a_tls_error(server: LoopbackServer) -> None:
    with pytest.raises(ConnectError) as caught:
        await read_certificate("127.0.0.1", server.port, verify=False)
    assert caught.value.kind == "tls"
    assert f"127.0.0.1:{server.port}" in str(caught.value)


async def test_closed_port_is_refused(closed_port: int) -> None:
    with pytest.raises(ConnectError) as caught:
        await read_certificate("127.0.0.1", closed_port)
    assert caught.value.kind == "refused"
    assert f"127.0.0.1:{closed_port}" in str(caught.value)


async def test_unresolvable_host_is_a_dns_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def unknown(*args: object, **kwargs: object) -> NoReturn:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # Resolution fails here rather than on a real resolver: tests stay off the network.
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", unknown)
    with pytest.raises(ConnectError) as caught:
        await read_certificate("no-such-host.invalid", 443)
    assert caught.value.kind == "dns"
    assert "no-such-host.invalid:443" in str(caught.value)


@pytest.mark.parametrize("port_fixture", ["silent_port", "unanswered_port"])
async def test_silent_server_times_out(port_fixture: str, request: pytest.FixtureRequest) -> None:
    port: int = request.getfixturevalue(port_fixture)
    with hang_guard(0.5 + LATE), pytest.raises(FetchTimeout) as caught:
        await read_certificate("127.0.0.1", port, timeout=0.5)
    assert caught.value.phase == "connect"
    assert f"127.0.0.1:{port}" in str(caught.value)
