"""``crawl fetch`` as a user runs it: a real process against the loopback server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.server import PAGE, LoopbackServer


def crawl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args], capture_output=True, timeout=60, check=False
    )


@pytest.mark.parametrize("engine", ["aiohttp", "threads", "futures"])
def test_fetch_prints_status_headers_and_body(server: LoopbackServer, engine: str) -> None:
    done = crawl("fetch", "--engine", engine, server.url("/redirect/1"))
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/html" in head
    assert body == PAGE


def test_fetch_sends_headers_and_can_stop_at_redirects(server: LoopbackServer) -> None:
    echoed = crawl("fetch", "-H", "X-Token: abc", server.url("/echo"))
    assert b'"x-token": "abc"' in echoed.stdout
    redirect = crawl("fetch", "--no-follow", server.url("/redirect/1"))
    assert redirect.stdout.startswith(b"HTTP/1.1 302 Found")


def test_fetch_failure_is_one_line_and_exit_1(server: LoopbackServer) -> None:
    done = crawl("fetch", "--timeout", "1", server.url("/hang-before-headers"))
    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr.decode().count("\n") == 1
    assert "FetchTimeout" in done.stderr.decode()


@pytest.mark.parametrize(
    "args",
    [[], ["fetch"], ["fetch", "--timeout", "-3", "http://x/"], ["fetch", "-H", "novalue", "http://x/"],
     ["fetch", "--engine", "curl", "http://x/"], ["nonsense"]],
)  # fmt: skip
def test_usage_errors_exit_2(args: list[str]) -> None:
    done = crawl(*args)
    assert done.returncode == 2
    assert done.stderr


def test_bad_url_is_a_failure_not_a_crash() -> None:
    done = crawl("fetch", "ftp://127.0.0.1/")
    assert done.returncode == 1
    assert b"InvalidURL" in done.stderr
    assert b"Traceback" not in done.stderr


def test_fetch_can_refuse_internal_addresses(server: LoopbackServer) -> None:
    before = server.hits_for("/ok")
    done = crawl("fetch", "--block-private", server.url("/ok"))
    assert done.returncode == 1
    assert done.stderr.decode().startswith(f"crawl: {server.url('/ok')}: BlockedAddress: refused")
    assert server.hits_for("/ok") == before
