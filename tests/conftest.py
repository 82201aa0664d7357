from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator

import pytest
import trustme

from tests.server import LoopbackServer, make_gzip_bomb

ENGINES = ["aiohttp", "threads", "futures"]


@pytest.fixture(scope="session")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
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


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


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
