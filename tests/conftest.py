from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.gensite import GeneratedSite
from tests.hostile import HostileServer
from tests.redis_server import SKIP_REASON as REDIS_SKIP_REASON
from tests.redis_server import RedisServer, redis_server_binary
from tests.server import LoopbackServer, make_gzip_bomb

ENGINES = ["aiohttp", "threads", "futures"]


@pytest.fixture(scope="session")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


@pytest.fixture(scope="session")
def small_site() -> Iterator[GeneratedSite]:
    """A generated site of 200 pages, for tests that crawl it and change nothing there."""
    with GeneratedSite(pages=200) as running:
        yield running


@pytest.fixture(scope="session")
def tls_server() -> Iterator[LoopbackServer]:
    """The same server over HTTPS with a certificate no system trusts."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with LoopbackServer(ssl_context=context) as running:
        yield running


@pytest.fixture(scope="session")
def gzip_bomb(server: LoopbackServer) -> str:
    if not server.gzip_bomb:
        server.gzip_bomb = make_gzip_bomb()
    return server.url("/gzip-bomb")


def _parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    """Whether the test names its own values of ``name`` (``@pytest.mark.parametrize``)."""
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        if name in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``engine``: every HTTP engine; in a module with ``NOT_FOR_BROWSER`` (a dict of the
    tests that do not apply, each with its reason), the ``browser`` engine too."""
    if "engine" in metafunc.fixturenames and not _parametrized(metafunc, "engine"):
        exceptions = getattr(metafunc.module, "NOT_FOR_BROWSER", None)
        browser = exceptions is not None and metafunc.function.__name__ not in exceptions
        metafunc.parametrize("engine", [*ENGINES, "browser"] if browser else ENGINES)


@pytest.fixture(scope="session")
def unanswered_port() -> Iterator[int]:
    """A loopback port whose accept queue is full, so new connections hang in
    the TCP handshake: the only way to see a connect timeout without leaving 127.0.0.1."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in [*fillers, listener]:
        sock.close()


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_ca_file(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The ``tls_ca`` certificate as a PEM bundle, for ``verify=`` arguments."""
    path = tmp_path_factory.mktemp("tls-ca") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


def _tls_server(ca: trustme.CA, valid_from: int, valid_until: int) -> Iterator[LoopbackServer]:
    """HTTPS with a ``ca`` certificate for 127.0.0.1 and localhost, valid between
    these days from now."""
    now = datetime.now(UTC)
    cert = ca.issue_cert(
        "127.0.0.1",
        "localhost",
        not_before=now + timedelta(days=valid_from),
        not_after=now + timedelta(days=valid_until),
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    with LoopbackServer(ssl_context=context) as running:
        yield running


@pytest.fixture(scope="session")
def tls_valid_server(tls_ca: trustme.CA) -> Iterator[LoopbackServer]:
    """A ``tls_ca`` certificate, valid 30 more days."""
    yield from _tls_server(tls_ca, -1, 30)


@pytest.fixture(scope="session")
def tls_expired_server(tls_ca: trustme.CA) -> Iterator[LoopbackServer]:
    """A ``tls_ca`` certificate that expired 3 days ago."""
    yield from _tls_server(tls_ca, -40, -3)


@pytest.fixture(scope="session")
def tls_self_signed_expired_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LoopbackServer]:
    """HTTPS with a self-signed certificate for 127.0.0.1 and localhost that expired 3 days ago."""
    now = datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=40))
        .not_valid_after(now - timedelta(days=3))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls-self-signed")
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    with LoopbackServer(ssl_context=context) as running:
        yield running


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="session")
def silent_port() -> Iterator[int]:
    """A loopback port that completes the TCP handshake (the kernel does it) but
    never reads or answers: a TLS handshake there hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port: int = listener.getsockname()[1]
        yield port


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if redis_server_binary() is None:
        pytest.skip(REDIS_SKIP_REASON)
    with RedisServer() as running:
        yield running


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    redis_server.flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def hostile() -> Iterator[HostileServer]:
    """The server that misbehaves in every way the hostile suites need."""
    with HostileServer() as running:
        yield running


@pytest.fixture(scope="session")
def demo_shop() -> Iterator[str]:
    """The demo shop (scripts/demo_site.py) on a free loopback port: its host:port."""
    scripts = str(Path(__file__).resolve().parent.parent / "scripts")
    sys.path.insert(0, scripts)
    try:
        import demo_site
    finally:
        sys.path.remove(scripts)
    sock = demo_site.bind(0)
    with demo_site.serving(sock):
        yield f"127.0.0.1:{demo_site.port_of(sock)}"
