"""The engine conformance suite: every engine, the same real loopback server, the same answers."""

from __future__ import annotations

import asyncio

import pytest

from crawler import (
    BodyTooLarge,
    ConnectError,
    EngineOptions,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidURL,
    ProtocolError,
    Request,
    Response,
    Timeouts,
    create_engine,
)
from tests.fakes import start_waiting
from tests.guards import LATE, hang_guard
from tests.server import CHARSET_PAGES, CHARSET_TEXT, PAGE, LoopbackServer

# The browser engine runs this suite too: its documents come from the aiohttp engine,
# so every rule of one exchange holds, and its HTML bodies are the rendered DOM (the
# tests that read an HTML body say so). The exceptions, by test:
NOT_FOR_BROWSER = {
    "test_unknown_engine_names_the_choices": "not about an engine",
}


# A body cut at max_bytes leaves the server's socket buffers full (a few MiB), far
# from the 200 MiB of /huge that an engine reading on would take.
HUGE_MIB = 200
CUT_SHORT = (HUGE_MIB << 20) // 4


async def send(engine: str, request: Request, **options: object) -> object:
    async with create_engine(engine, EngineOptions(**options)) as opened:  # type: ignore[arg-type]
        return await opened.send(request)


async def test_ok_page(engine: str, server: LoopbackServer) -> None:
    response = await send(engine, Request(server.url("/ok")))
    assert response.status == 200
    assert response.reason == "OK"
    if engine == "browser":  # the DOM as Chromium writes it, in UTF-8, the document kept
        assert response.rendered_from is not None
        assert response.rendered_from.body == PAGE
        assert response.headers["content-type"] == "text/html; charset=utf-8"
    else:
        assert response.body == PAGE
        assert response.rendered_from is None
    assert response.headers["CONTENT-TYPE"].startswith("text/html")
    assert response.url == response.request_url == server.url("/ok")
    assert "<p>ok</p>" in response.text
    assert response.elapsed > 0


@pytest.mark.parametrize("status", [200, 201, 204, 304, 400, 404, 418, 500, 503])
async def test_every_status_is_a_response(engine: str, server: LoopbackServer, status: int) -> None:
    response = await send(engine, Request(server.url(f"/status/{status}")))
    assert response.status == status
    if status >= 400:
        with pytest.raises(HTTPStatusError) as caught:
            response.raise_for_status()
        assert caught.value.response is response
    else:
        assert response.raise_for_status() is response


async def test_engine_sends_one_request_and_never_follows_redirects(
    engine: str, server: LoopbackServer
) -> None:
    before = server.hits_for("/ok")
    response = await send(engine, Request(server.url("/redirect/1")))
    assert response.status == 302
    assert response.headers["location"] == "/ok"
    assert server.hits_for("/ok") == before


async def test_engine_never_retries(engine: str, server: LoopbackServer) -> None:
    path = f"/flaky/engine-{engine}"
    response = await send(engine, Request(server.url(path)))
    assert response.status == 503
    assert server.hits_for(path) == 1


async def test_multi_valued_headers_are_kept(engine: str, server: LoopbackServer) -> None:
    response = await send(engine, Request(server.url("/set-cookie?a=1&b=2")))
    cookies = response.headers.getall("Set-Cookie")
    assert len(cookies) == 2
    assert {c.split(";")[0] for c in cookies} == {"a=1", "b=2"}


@pytest.mark.parametrize("path", ["/drip", "/hang-before-headers", "/hang-after-headers"])
async def test_total_timeout_holds_against_slow_servers(
    engine: str, server: LoopbackServer, path: str
) -> None:
    with hang_guard(1.5 + LATE), pytest.raises(FetchTimeout):
        await send(engine, Request(server.url(path), timeouts=Timeouts(total=1.5)))


async def test_connect_timeout_is_a_connect_phase_timeout(
    engine: str, unanswered_port: int
) -> None:
    request = Request(
        f"http://127.0.0.1:{unanswered_port}/", timeouts=Timeouts(connect=0.5, total=10)
    )
    with hang_guard(0.5 + LATE), pytest.raises(FetchTimeout) as caught:
        await send(engine, request)
    assert caught.value.phase == "connect"  # not the 10 s total


async def test_read_timeout_is_a_read_phase_timeout(engine: str, server: LoopbackServer) -> None:
    request = Request(server.url("/hang-before-headers"), timeouts=Timeouts(read=0.5, total=10))
    with hang_guard(0.5 + LATE), pytest.raises(FetchTimeout) as caught:
        await send(engine, request)
    assert caught.value.phase == "read"  # not the 10 s total


@pytest.mark.parametrize("path", ["/reset", "/truncated"])
async def test_body_cut_short_is_a_protocol_error(
    engine: str, server: LoopbackServer, path: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        await send(engine, Request(server.url(path)))
    assert caught.value.request is not None
    assert caught.value.__cause__ is not None


async def test_gzip_is_decoded(engine: str, server: LoopbackServer) -> None:
    response = await send(engine, Request(server.url("/gzip")))
    assert (response.rendered_from or response).body == PAGE * 100
    assert response.headers["content-encoding"] == "gzip"


async def test_gzip_bomb_is_stopped_after_decompression(engine: str, gzip_bomb: str) -> None:
    # 1 GiB of zeros, 1 MiB compressed: it fits the socket buffers, so only the engine
    # can tell where it stopped inflating. One read past the cap, not the whole bomb.
    with pytest.raises(BodyTooLarge, match="max_bytes") as caught:
        await send(engine, Request(gzip_bomb, max_bytes=10_000_000))
    assert 10_000_000 < caught.value.received <= 10_000_000 + (1 << 20)


@pytest.mark.parametrize("length", ["1", "0"])
async def test_huge_body_is_cut_at_max_bytes(
    engine: str, server: LoopbackServer, length: str
) -> None:
    key = f"engines-cut-{engine}-{length}"
    url = server.url(f"/huge?mb={HUGE_MIB}&length={length}&key={key}")
    with pytest.raises(BodyTooLarge, match="max_bytes") as caught:
        await send(engine, Request(url, max_bytes=1_000_000))
    assert await asyncio.to_thread(server.sent, key) < CUT_SHORT  # it hung up, not read on
    # A declared length over the cap is refused before a byte of the body is read.
    assert (caught.value.received == 0) == (length == "1")


async def test_body_exactly_at_max_bytes_is_accepted(engine: str, server: LoopbackServer) -> None:
    response = await send(engine, Request(server.url("/huge?mb=1"), max_bytes=1 << 20))
    assert len(response.body) == 1 << 20


@pytest.mark.parametrize("name", sorted(CHARSET_PAGES))
async def test_non_utf8_pages_decode(engine: str, server: LoopbackServer, name: str) -> None:
    response = await send(engine, Request(server.url(f"/charset/{name}")))
    expected = {
        "shift-jis": "\u65e5\u672c\u8a9e",
        "euc-kr": "\ud55c\uad6d\uc5b4",
        "header-latin1": CHARSET_TEXT.replace("\u20ac", ""),
    }.get(name, CHARSET_TEXT)
    assert expected in response.text
    assert "\ufffd" not in response.text


async def test_head_has_no_body(engine: str, server: LoopbackServer) -> None:
    response = await send(engine, Request(server.url("/ok"), method="HEAD"))
    assert response.status == 200
    assert response.body == b""


async def test_post_sends_method_headers_and_body(engine: str, server: LoopbackServer) -> None:
    request = Request(
        server.url("/echo"),
        method="POST",
        body=b"a=1&b=2",
        headers={"X-Test": "yes", "Content-Type": "application/x-www-form-urlencoded"},
    )
    echoed = (await send(engine, request)).json()
    assert echoed["method"] == "POST"
    assert echoed["body"] == "a=1&b=2"
    assert echoed["headers"]["x-test"] == "yes"


async def test_refused_connection_is_connect_error(engine: str) -> None:
    with pytest.raises(ConnectError, match="Connection refused") as caught:
        await send(engine, Request("http://127.0.0.1:9/"))
    assert caught.value.kind == "refused"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "file:///etc/passwd", "not a url", "http://"])
async def test_invalid_urls_are_refused_before_connecting(engine: str, url: str) -> None:
    with pytest.raises(InvalidURL):
        await send(engine, Request(url))


async def test_proxy_carries_the_request(engine: str, server: LoopbackServer) -> None:
    response = await send(engine, Request("http://example.invalid/echo"), proxy=server.url())
    assert response.json()["url"] == "http://example.invalid/echo"


async def test_tls_is_verified_unless_turned_off(engine: str, tls_server: LoopbackServer) -> None:
    with pytest.raises(ConnectError, match="TLS: ") as caught:
        await send(engine, Request(tls_server.url("/ok")))
    assert caught.value.kind == "tls"
    response = await send(engine, Request(tls_server.url("/ok")), verify_tls=False)
    assert response.status == 200


async def test_tls_trusts_a_ca_file_instead_of_the_system(
    engine: str, tls_valid_server: LoopbackServer, tls_ca_file: str, tls_server: LoopbackServer
) -> None:
    response = await send(engine, Request(tls_valid_server.url("/ok")), verify_tls=tls_ca_file)
    assert response.status == 200
    with pytest.raises(ConnectError) as caught:  # another CA's certificate: not trusted
        await send(engine, Request(tls_server.url("/ok")), verify_tls=tls_ca_file)
    assert caught.value.kind == "tls"


async def test_cookies_are_sent_and_kept(engine: str, server: LoopbackServer) -> None:
    async with create_engine(engine, EngineOptions(cookies={"session": "s1"})) as opened:
        await opened.send(Request(server.url("/set-cookie?theme=dark")))
        echoed = (await opened.send(Request(server.url("/echo")))).json()
    assert echoed["cookies"] == {"session": "s1", "theme": "dark"}


async def test_engine_can_reopen(engine: str, server: LoopbackServer) -> None:
    opened = create_engine(engine)
    for _ in range(2):
        async with opened:
            assert (await opened.send(Request(server.url("/ok")))).status == 200


async def test_engine_must_be_open(engine: str, server: LoopbackServer) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await create_engine(engine).send(Request(server.url("/ok")))


def test_unknown_engine_names_the_choices() -> None:
    with pytest.raises(ValueError, match="aiohttp, browser, futures, threads"):
        create_engine("curl")


async def test_redirect_body_is_read_like_any_other(engine: str, server: LoopbackServer) -> None:
    response = await send(engine, Request(server.url("/redirect-with-body")))
    assert (response.status, response.body) == (302, b"moved to /ok")


async def test_huge_redirect_body_is_capped_too(engine: str, server: LoopbackServer) -> None:
    key = f"engines-redirect-{engine}"
    url = server.url(f"/huge?mb={HUGE_MIB}&length=0&status=302&location=/ok&key={key}")
    with pytest.raises(BodyTooLarge):
        await send(engine, Request(url, max_bytes=100_000))
    assert await asyncio.to_thread(server.sent, key) < CUT_SHORT  # it hung up, not read on


async def test_repeated_request_headers_all_arrive(engine: str, server: LoopbackServer) -> None:
    request = Request(server.url("/echo"), headers=[("X-Multi", "a"), ("X-Multi", "b")])
    echoed = (await send(engine, request)).json()
    assert echoed["headers"]["x-multi"] == "a, b"


async def test_utf8_headers_read_the_same_everywhere(engine: str, server: LoopbackServer) -> None:
    response = await send(engine, Request(server.url("/redirect-to?url=/echo/%C3%BC-%E2%82%AC")))
    assert response.headers["location"] == "/echo/ü-€"


async def test_closing_fails_queued_requests_cleanly(engine: str, server: LoopbackServer) -> None:
    """Closing an engine while one request is in flight and another waits for its
    only slot ends both, promptly: the one in flight with its real answer or a
    FetchError, the queued one with a FetchError saying the engine closed (or as
    cancelled). The queued one is never sent."""
    sent_path, queued_path = f"/slow/closing-{engine}-sent", f"/slow/closing-{engine}-queued"
    # Answered 2 s after it arrives: long after the close, however loaded the machine.
    in_flight = Request(server.url(sent_path + "?delay=2"))
    queued = Request(server.url(queued_path + "?delay=0.5"))
    opened = create_engine(engine, EngineOptions(concurrency=1))
    await opened.open()
    first = asyncio.create_task(opened.send(in_flight))
    assert await asyncio.to_thread(server.wait_for_hits, sent_path, 1)  # it holds the slot
    (second,) = await start_waiting(lambda: opened.send(queued))  # waiting for the slot
    with hang_guard(2 + LATE):
        await opened.aclose()
        outcomes = await asyncio.gather(first, second, return_exceptions=True)
    sent, waiting = outcomes

    if isinstance(sent, Response):
        assert (sent.status, sent.body, sent.request) == (200, PAGE, in_flight)
    else:
        assert isinstance(sent, FetchError), repr(sent)
        assert sent.request is in_flight

    if not isinstance(waiting, asyncio.CancelledError):
        assert isinstance(waiting, FetchError), repr(waiting)
        assert waiting.request is queued
        assert "closed" in str(waiting)
    assert server.hits_for(queued_path) == 0


async def test_a_worker_is_freed_when_its_caller_gives_up(
    engine: str, server: LoopbackServer
) -> None:
    """A server dripping header bytes never trips a read timeout; the caller's
    deadline must still free the connection (and, on thread engines, the thread)."""
    async with create_engine(engine, EngineOptions(concurrency=1)) as opened:
        with pytest.raises(FetchTimeout):
            await opened.send(Request(server.url("/drip-headers"), timeouts=Timeouts(total=1)))
        # Within its own total: a worker still held by /drip-headers would time it out.
        response = await opened.send(Request(server.url("/ok"), timeouts=Timeouts(total=2)))
        assert response.status == 200
