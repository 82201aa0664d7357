"""``crawl fetch`` as a user runs it: a real process against the loopback server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crawler.cli.args import with_default_scheme
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


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("127.0.0.1:8081", "http://127.0.0.1:8081"), ("127.0.0.1:8081/x?y#z", "http://127.0.0.1:8081/x?y#z"),
     ("localhost", "http://localhost"), ("localhost:8081/x", "http://localhost:8081/x"),
     ("example.org/x", "http://example.org/x"), ("example.org:8080", "http://example.org:8080"),
     ("[::1]:8081/", "http://[::1]:8081/"), ("user@example.org:81/", "http://user@example.org:81/"),
     ("//example.org/x", "http://example.org/x"),
     # a scheme of its own stays, to be refused by name (or fetched, for http and https)
     ("https://example.org/", "https://example.org/"), ("HTTP://example.org/", "HTTP://example.org/"),
     ("ftp://example.org/", "ftp://example.org/"), ("file:/etc/passwd", "file:/etc/passwd"),
     ("file:///etc/passwd", "file:///etc/passwd"), ("mailto:a@example.org", "mailto:a@example.org"),
     ("not a url", "not a url"), ("", "")],
)  # fmt: skip
def test_a_url_without_a_scheme_is_http_as_in_curl(typed: str, meant: str) -> None:
    assert with_default_scheme(typed) == meant


@pytest.mark.parametrize("path", ["/ok", ""])
def test_fetch_assumes_http_without_a_scheme(server: LoopbackServer, path: str) -> None:
    done = crawl("fetch", f"127.0.0.1:{server.port}{path}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert done.stdout.endswith(PAGE)


@pytest.mark.parametrize(
    ("url", "scheme"), [("ftp://127.0.0.1/", "ftp"), ("file:/etc/passwd", "file")]
)
def test_fetch_refuses_another_scheme_by_its_name(url: str, scheme: str) -> None:
    done = crawl("fetch", url)
    assert done.returncode == 1
    assert f"InvalidURL: unsupported scheme '{scheme}'".encode() in done.stderr


def test_a_refused_address_names_the_option_that_allows_it(server: LoopbackServer) -> None:
    done = crawl("fetch", "--block-private", server.url("/ok"))
    assert done.returncode == 1
    err = done.stderr.decode()
    assert err.count("\n") == 1
    assert "loopback address 127.0.0.1" in err
    assert "allow it with --allow-private ADDRESS, ADDRESS:PORT or NETWORK" in err
    assert "allow_private" not in err  # the library's name: no such option here


@pytest.mark.parametrize("form", ["address:port", "network"])
def test_allow_private_reaches_what_it_names(server: LoopbackServer, form: str) -> None:
    allowed = f"127.0.0.1:{server.port}" if form == "address:port" else "127.0.0.0/8"
    before = server.hits_for("/ok")
    done = crawl("fetch", "--block-private", "--allow-private", "10.9.9.9",
                 "--allow-private", allowed, server.url("/ok"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(PAGE)
    assert server.hits_for("/ok") == before + 1


def test_allow_private_refuses_what_it_does_not_name(server: LoopbackServer) -> None:
    before = server.hits_for("/ok")
    done = crawl("fetch", "--block-private", "--allow-private", f"127.0.0.1:{server.port + 1}",
                 server.url("/ok"))  # fmt: skip
    assert done.returncode == 1
    assert b"BlockedAddress" in done.stderr
    assert server.hits_for("/ok") == before


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--allow-private", "127.0.0.1"], "--allow-private needs --block-private"),
     (["--block-private", "--allow-private", "localhost"], "argument --allow-private: expected an IP address"),
     (["--block-private", "--allow-private", "10.0.0.0/8:80"], "argument --allow-private: expected an IP address")],
)  # fmt: skip
def test_allow_private_usage_errors_exit_2(args: list[str], message: str) -> None:
    done = crawl("fetch", *args, "http://127.0.0.1:9/")
    assert done.returncode == 2
    assert message in done.stderr.decode()
