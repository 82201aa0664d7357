"""The address guard: no connection to loopback, private or reserved addresses.

URLs from users or from the web can point into the crawler's own network
(``http://169.254.169.254/``, ``http://localhost:6379/``, a name whose DNS
answer is ``10.0.0.1``, a redirect to any of those). Checking the URL's text
cannot catch them all: decimal, octal and hex spellings, IPv4-mapped IPv6 and
DNS all hide the real target. So the guard judges the address a socket is
actually about to connect to, after resolution, on every engine and for every
redirect hop: the engines resolve, pass the answers through ``permitted``, and
connect only to what passed.

``allow`` names the internal targets that stay reachable: an address
(``10.0.0.5``), an address and port (``127.0.0.1:8099``, ``[::1]:8099``) or a
network (``10.1.2.0/24``).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from crawler.errors import ConfigError

__all__ = [
    "ALLOW_FORMS",
    "ALLOW_HINT",
    "AddressGuard",
    "AddressRefused",
    "address_guard",
    "blocked_category",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddrInfo = tuple[int | socket.AddressFamily, int | socket.SocketKind, int, str, tuple[Any, ...]]
T = TypeVar("T")

_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
ALLOW_FORMS = "an IP address, IP:port, [IPv6]:port or a network such as 10.1.2.0/24"


# How a refusal says to loosen the guard, in the library's and the config's words.
ALLOW_HINT = "allow it with allow_private"


class AddressRefused(OSError):
    """Raised where a connection would be made; the engines turn it into ``BlockedAddress``.

    An ``OSError``, so that connection code trying several addresses in turn
    (happy eyeballs) moves on to the next one instead of giving up."""

    def __init__(self, address: str, port: int, category: str) -> None:
        self.address = address
        self.port = port
        self.category = category
        self.reason = (
            f"refused to connect to {category} address {address} port {port} "
            f"(block_private; {ALLOW_HINT})"
        )
        super().__init__(errno.EACCES, self.reason)


def blocked_category(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``"loopback"``, ``"private"``…), or None.

    IPv6 forms that carry an IPv4 address (mapped, 6to4, NAT64, Teredo) are judged
    by that address: the packets end up there (and the prefixes themselves count as
    reserved, which would shut out every IPv4 site behind DNS64)."""
    candidates: list[IPAddress] = [*_embedded_ipv4(ip)] or [ip]
    for candidate in candidates:
        for name in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
            if getattr(candidate, f"is_{name}"):
                return name.replace("_", "-")
        if not candidate.is_global:
            return "non-public"
    return None


def _embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


@dataclass(frozen=True, slots=True)
class _Allowed:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    port: int | None  # None: every port

    def covers(self, ip: IPAddress, port: int) -> bool:
        return ip in self.network and self.port in (None, port)


def _parse_allowed(entry: str) -> _Allowed:
    """``10.0.0.5``, ``127.0.0.1:8099``, ``[::1]:8099``, ``::1`` or ``10.1.2.0/24``."""
    if not isinstance(entry, str):
        raise ValueError(f"allow_private entry {entry!r}: expected {ALLOW_FORMS}")
    text, port = entry.strip(), None
    if text.startswith("["):
        text, _, rest = text[1:].partition("]")
        if rest:
            port = _port(entry, rest.removeprefix(":") if rest.startswith(":") else "")
    elif text.count(":") == 1:
        text, _, rest = text.partition(":")
        port = _port(entry, rest)
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise ValueError(f"allow_private entry {entry!r}: expected {ALLOW_FORMS}") from None
    if port is not None and network.num_addresses != 1:
        raise ValueError(f"allow_private entry {entry!r}: a port goes with one address only")
    return _Allowed(network, port)


def _port(entry: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"allow_private entry {entry!r}: the port must be 1-65535")
    return int(text)


@dataclass(frozen=True, slots=True)
class AddressGuard:
    """Refuses non-public addresses except those ``allow`` names. Immutable, thread-safe."""

    allow: Sequence[str] = ()
    _allowed: tuple[_Allowed, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """``ValueError`` names an entry that is not an address, address:port or network."""
        object.__setattr__(self, "allow", tuple(self.allow))
        object.__setattr__(self, "_allowed", tuple(_parse_allowed(e) for e in self.allow))

    def check(self, address: str, port: int) -> None:
        """Raise ``AddressRefused`` unless a connection to ``address``:``port`` is permitted."""
        ip = ipaddress.ip_address(address.partition("%")[0])  # drop an IPv6 zone id
        category = blocked_category(ip)
        if category is not None and not any(a.covers(ip, port) for a in self._allowed):
            raise AddressRefused(str(ip), port, category)

    def check_literal(self, host: str, port: int) -> None:
        """Judge a host written as a legacy numeric IPv4 (``2130706433``, ``0x7f.1``,
        ``0177.0.0.1``) by the address it means, before any engine decides what to
        make of the spelling: one refuses it as invalid, another connects."""
        if host and host[0].isdigit() and not _is_dotted_quad(host):
            try:
                packed = socket.inet_aton(host)
            except OSError:
                return  # not an address at all: DNS decides, and the connect check
            self.check(socket.inet_ntoa(packed), port)

    def permitted(
        self, candidates: Iterable[T], address: Callable[[T], tuple[str, int]]
    ) -> list[T]:
        """The resolved ``candidates`` whose ``address(candidate)`` passes;
        ``AddressRefused`` (for the first) when none does."""
        passed: list[T] = []
        first: AddressRefused | None = None
        for candidate in candidates:
            try:
                self.check(*address(candidate))
            except AddressRefused as exc:
                first = first or exc
                continue
            passed.append(candidate)
        if not passed and first is not None:
            raise first
        return passed

    def connect(
        self,
        address: tuple[str, int],
        timeout: float | None,
        source_address: tuple[str, int] | None = None,
        socket_options: Iterable[tuple[int, int, int]] | None = None,
    ) -> socket.socket:
        """Blocking: resolve, filter, then connect to the first permitted address
        that answers; the thread engines' connections call this."""
        host, port = address
        infos = socket.getaddrinfo(host.strip("[]"), port, 0, socket.SOCK_STREAM)
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in self.permitted(
            infos, lambda info: (str(info[4][0]), port)
        ):
            sock = socket.socket(family, kind, proto)
            try:
                for option in socket_options or ():
                    sock.setsockopt(*option)
                sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error or OSError("getaddrinfo returned no addresses")


def _is_dotted_quad(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def address_guard(
    block_private: bool,
    allow_private: Iterable[str] = (),
    *,
    proxy: str | None = None,
    section: str = "",
) -> AddressGuard | None:
    """The guard for these settings, or None; ``ConfigError`` names the setting that
    cannot work: an entry that is no address, an allow list without the block it
    would loosen, or a proxy (it makes the connections, so nothing here could check them)."""
    allow = list(allow_private)
    for index, entry in enumerate(allow):
        try:
            _parse_allowed(entry)
        except ValueError:
            raise ConfigError(f"{section}allow_private[{index}]", entry, ALLOW_FORMS) from None
    if not block_private:
        if allow:
            raise ConfigError(
                f"{section}block_private", block_private, "true when allow_private is set"
            )
        return None
    if proxy:
        raise ConfigError(
            f"{section}block_private", block_private, "false when a proxy is set (it connects)"
        )
    return AddressGuard(allow)
