"""The address guard (``block_private``): no connection to an internal address,
however the URL spells it, whatever DNS answers, on any redirect hop, on every
engine; and what ``allow_private`` lets through.

Nothing here sends traffic beyond 127.0.0.1: names are resolved by a fake
``getaddrinfo``, and every ``connect`` to another address is recorded and
refused before a packet leaves.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler import (
    AddressGuard,
    BlockedAddress,
    ConfigError,
    ConnectError,
    Fetcher,
    SyncFetcher,
)
from crawler.config import parse_config
from crawler.crawl import Crawler
from crawler.engines import EngineOptions
from crawler.engines.guard import AddressRefused, address_guard, blocked_category
from tests.server import LoopbackServer

# The browser engine's documents come from its aiohttp engine, behind the same guard
# (what the pages it renders may reach is in test_browser.py).
NOT_FOR_BROWSER: dict[str, str] = {}


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("192.0.2.7", "private"),  # documentation
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:a00:1", "private"),  # IPv4-mapped 10.0.0.1, written in hex
        ("2002:a00:1::", "private"),  # 6to4 around 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
    ],
)
def test_internal_addresses_are_blocked(address: str, category: str) -> None:
    assert blocked_category(ipaddress.ip_address(address)) == category


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_category(ipaddress.ip_address(address)) is None
    AddressGuard().check(address, 443)


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f000001", "0177.0.0.1", "0x7f.1", "127.1", "017700000001", "0x0a.0.0.1"],
)
def test_legacy_numeric_spellings_are_judged_by_the_address_they_mean(host: str) -> None:
    with pytest.raises(AddressRefused):
        AddressGuard().check_literal(host, 80)


@pytest.mark.parametrize("host", ["1password.example", "8.8.8.8", "134744072", "example.org"])
def test_names_and_public_spellings_pass_the_literal_check(host: str) -> None:
    AddressGuard().check_literal(host, 80)  # 134744072 is 8.8.8.8


def test_allow_list_opens_exactly_what_it_names() -> None:
    guard = AddressGuard(["127.0.0.1:8099", "10.1.2.0/24", "[::1]:8080", "192.168.7.7"])
    guard.check("127.0.0.1", 8099)
    guard.check("10.1.2.200", 1)
    guard.check("::1", 8080)
    guard.check("192.168.7.7", 5432)
    for address, port in [
        ("127.0.0.1", 8098),
        ("10.1.3.1", 80),
        ("::1", 8081),
        ("192.168.7.8", 80),
    ]:
        with pytest.raises(AddressRefused):
            guard.check(address, port)


@pytest.mark.parametrize(
    "entry",
    [
        "intranet.local",
        "10.1.2.3/24",
        "10.0.0.0/8:80",
        "127.0.0.1:0",
        "127.0.0.1:99999",
        "",
        "[::1]x",
    ],
)
def test_allow_list_entries_that_are_not_addresses_are_config_errors(entry: str) -> None:
    with pytest.raises(ConfigError) as caught:
        address_guard(True, ["10.0.0.1", entry], section="fetch.")
    assert caught.value.key == "fetch.allow_private[1]"
    assert caught.value.value == entry


def test_config_names_settings_that_cannot_work_together() -> None:
    base = {"crawl": {"start_urls": ["http://127.0.0.1:1/"]}}
    with pytest.raises(ConfigError) as caught:
        parse_config({**base, "fetch": {"block_private": True, "proxy": "http://127.0.0.1:3128"}})
    assert caught.value.key == "fetch.block_private"
    with pytest.raises(ConfigError) as caught:
        parse_config({**base, "fetch": {"allow_private": ["10.0.0.1"]}})
    assert caught.value.key == "fetch.block_private"
    with pytest.raises(ValueError, match="proxy"):
        EngineOptions(guard=AddressGuard(), proxy="http://127.0.0.1:3128")


def test_a_ready_engine_cannot_take_block_private_from_the_fetcher() -> None:
    from crawler import MockEngine

    with pytest.raises(ConfigError) as caught:
        Fetcher(MockEngine(lambda request: None), block_private=True)  # type: ignore[arg-type,return-value]
    assert caught.value.key == "block_private"


# --- on the wire -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_server() -> Iterator[LoopbackServer]:
    """A second loopback server: a port the allow list does not name."""
    with LoopbackServer() as running:
        yield running


def spellings(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/ok",
        f"http://localhost:{port}/ok",
        f"http://2130706433:{port}/ok",
        f"http://0x7f.0.0.1:{port}/ok",
        f"http://0177.0.0.1:{port}/ok",
        f"http://127.1:{port}/ok",
        f"http://[::ffff:127.0.0.1]:{port}/ok",
        f"http://[::ffff:7f00:1]:{port}/ok",
    ]


async def test_every_spelling_of_loopback_is_refused_unsent(
    engine: str, server: LoopbackServer
) -> None:
    before = server.hits_for("/ok")
    async with Fetcher(engine, block_private=True, timeout=5) as fetcher:
        for url in spellings(server.port):
            with pytest.raises(BlockedAddress, match="loopback address") as caught:
                await fetcher.get(url)
            assert caught.value.request is not None
    assert server.hits_for("/ok") == before


async def test_allowed_origin_is_reachable_and_its_redirects_are_still_guarded(
    engine: str, server: LoopbackServer, other_server: LoopbackServer
) -> None:
    other_before = other_server.hits_for("/ok")
    async with Fetcher(
        engine, block_private=True, allow_private=[f"127.0.0.1:{server.port}"]
    ) as fetcher:
        response = await fetcher.get(server.url("/ok"))
        assert response.status == 200
        for target in [other_server.url("/ok"), f"http://localhost:{other_server.port}/ok"]:
            with pytest.raises(BlockedAddress, match=f"port {other_server.port}"):
                await fetcher.get(server.url("/redirect-to") + "?url=" + target)
    assert other_server.hits_for("/ok") == other_before


async def test_an_allowed_network_opens_every_port_in_it(
    engine: str, server: LoopbackServer, other_server: LoopbackServer
) -> None:
    async with Fetcher(engine, block_private=True, allow_private=["127.0.0.0/8"]) as fetcher:
        assert (await fetcher.get(server.url("/ok"))).status == 200
        assert (await fetcher.get(other_server.url("/ok"))).status == 200


def test_sync_fetcher_takes_the_guard_too(server: LoopbackServer) -> None:
    with SyncFetcher(block_private=True) as fetcher, pytest.raises(BlockedAddress):
        fetcher.get(server.url("/ok"))


class FakeNetwork:
    """Fake DNS for ``*.test`` names, and a record of every connect attempt: one to
    127.0.0.1 goes through, any other is refused before a packet leaves."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
        self.names = names
        self.attempts: list[str] = []
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, str) and host in names:
                return [
                    answer
                    for address in names[host]
                    for answer in real_getaddrinfo(address, port, *args, **kwargs)
                ]
            return real_getaddrinfo(host, port, *args, **kwargs)

        def allowed(address: Any) -> bool:
            self.attempts.append(address[0])
            return bool(address[0] == "127.0.0.1")

        def connect(sock: socket.socket, address: Any) -> None:
            if not allowed(address):
                raise ConnectionRefusedError(111, "refused by the test's fake network")
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            if not allowed(address):
                return 111
            return real_connect_ex(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)

    def tried(self, address: str) -> bool:
        return address in self.attempts


async def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(
    engine: str, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = FakeNetwork(monkeypatch, {"intranet.test": ["10.0.0.1"]})
    async with Fetcher(engine, block_private=True, timeout=5) as fetcher:
        with pytest.raises(BlockedAddress, match=re.escape("private address 10.0.0.1")):
            await fetcher.get("http://intranet.test/")
    assert not network.tried("10.0.0.1")


async def test_without_the_guard_the_same_name_is_tried(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the fake network does see connection attempts when nothing stops them."""
    network = FakeNetwork(monkeypatch, {"intranet.test": ["10.0.0.1"]})
    async with Fetcher(engine, timeout=5) as fetcher:
        with pytest.raises(ConnectError) as caught:
            await fetcher.get("http://intranet.test/")
    assert caught.value.kind == "refused"
    assert network.tried("10.0.0.1")


async def test_a_name_with_public_and_private_answers_connects_only_to_what_passed(
    engine: str, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = FakeNetwork(monkeypatch, {"mixed.test": ["10.0.0.1", "127.0.0.1"]})
    allow = [f"127.0.0.1:{server.port}"]
    async with Fetcher(engine, block_private=True, allow_private=allow, timeout=5) as fetcher:
        response = await fetcher.get(f"http://mixed.test:{server.port}/ok")
    assert response.status == 200
    assert not network.tried("10.0.0.1")
    assert network.tried("127.0.0.1")


async def test_a_redirect_to_a_name_of_a_private_address_is_refused(
    engine: str, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = FakeNetwork(monkeypatch, {"metadata.test": ["169.254.169.254"]})
    allow = [f"127.0.0.1:{server.port}"]
    async with Fetcher(engine, block_private=True, allow_private=allow, timeout=5) as fetcher:
        with pytest.raises(BlockedAddress, match=re.escape("link-local address 169.254.169.254")):
            await fetcher.get(server.url("/redirect-to") + "?url=http://metadata.test/latest/")
    assert not network.tried("169.254.169.254")


# --- in a crawl ------------------------------------------------------------------------


async def test_a_crawl_records_blocked_requests_as_errors_and_counts_them(
    engine: str, server: LoopbackServer, other_server: LoopbackServer, tmp_path: Path
) -> None:
    other_before = other_server.hits_for("/ok")
    config = parse_config({
        "crawl": {"start_urls": [
            server.url("/ok"),
            other_server.url("/ok"),
            server.url("/redirect-to") + "?url=" + other_server.url("/ok?via=redirect"),
        ]},
        "fetch": {"engine": engine, "block_private": True, "allow_private": [f"127.0.0.1:{server.port}"]},
        "rate_limit": {"per_host": ""},
        "output": {"dir": str(tmp_path)},
    })  # fmt: skip
    stats = await Crawler(config).run()

    errors = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
    blocked = [e for e in errors if e["kind"] == "blocked"]
    pages = sorted(e["url"] for e in blocked if not e["url"].endswith("/sitemap.xml"))
    assert pages == sorted([other_server.url("/ok"), other_server.url("/ok?via=redirect")])
    assert all("loopback address 127.0.0.1" in e["message"] for e in blocked)
    assert stats.errors["blocked"] == len(blocked)
    assert other_server.hits_for("/ok") == other_before
    assert stats.items == 1
