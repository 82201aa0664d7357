"""Values: requests, responses, timeouts, decoding, and the public names."""

from __future__ import annotations

import dataclasses

import pytest

import crawler
from crawler import HTTPStatusError, Request, Response, Timeouts
from crawler.errors import ConfigError, CrawlerError, FetchError


def test_public_names_are_pinned() -> None:
    assert crawler.__all__ == sorted(crawler.__all__)
    assert crawler.__all__ == [
        "AddressGuard", "AlreadyRunning", "BlockedAddress", "BodyTooLarge", "BrowserOptions", "ConfigError",
        "ConnectError",
        "Crawler", "CrawlerError", "Engine", "EngineOptions", "ErrorRecord", "FetchError", "FetchPolicy",
        "FetchTimeout", "Fetcher", "FollowRedirects", "FrontierError", "HTTPStatusError", "InvalidURL",
        "Lineage", "Middleware", "MockEngine", "ParseError",
        "ProtocolError", "RateLimit", "Request", "RequestDropped", "Response", "Result", "Retry",
        "RetryLater", "SinkError", "SyncFetcher", "Timeout", "Timeouts", "TooManyRedirects",
        "create_engine",
    ]  # fmt: skip
    for name in crawler.__all__:
        assert getattr(crawler, name) is not None


@pytest.mark.parametrize(
    ("name", "bases"),
    [
        ("FetchTimeout", (crawler.FetchError, TimeoutError)),
        ("ConnectError", (crawler.FetchError, ConnectionError)),
        ("ProtocolError", (crawler.FetchError,)),
        ("BodyTooLarge", (crawler.ProtocolError,)),
        ("TooManyRedirects", (crawler.FetchError,)),
        ("HTTPStatusError", (crawler.FetchError,)),
        ("BlockedAddress", (crawler.FetchError,)),
        ("InvalidURL", (crawler.FetchError, ValueError)),
        ("ConfigError", (CrawlerError, ValueError)),
        ("RequestDropped", (CrawlerError,)),
        ("RetryLater", (CrawlerError,)),
        ("FetchError", (CrawlerError,)),
        ("ParseError", (CrawlerError,)),
        ("SinkError", (CrawlerError, OSError)),
        ("FrontierError", (CrawlerError,)),
    ],
)
def test_exception_tree(name: str, bases: tuple[type, ...]) -> None:
    assert issubclass(getattr(crawler, name), bases)


def test_config_error_names_key_value_and_expectation() -> None:
    error = ConfigError("crawl.max_depth", "ten", "a non-negative integer")
    assert str(error) == 'crawl.max_depth: expected a non-negative integer, got "ten"'
    assert (error.key, error.value, error.expected) == (
        "crawl.max_depth",
        "ten",
        "a non-negative integer",
    )


def test_request_is_frozen_and_normalised() -> None:
    request = Request("http://a.test/", method="post", headers={"X-A": "1"}, body="é")
    assert request.method == "POST"
    assert request.body == "é".encode()
    assert request.headers["x-a"] == "1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.url = "http://b.test/"  # type: ignore[misc]
    changed = request.replace(url="http://b.test/")
    assert (request.url, changed.url, changed.method) == (
        "http://a.test/",
        "http://b.test/",
        "POST",
    )


@pytest.mark.parametrize("bad", [0, -1, "5", True])
def test_timeouts_reject_nonsense(bad: object) -> None:
    with pytest.raises(ValueError, match="Timeouts"):
        Timeouts(total=bad)  # type: ignore[arg-type]


def test_timeouts_default_phases_to_the_total() -> None:
    assert Timeouts.of(5) == Timeouts(total=5.0)
    assert Timeouts(total=5).effective_read == 5
    assert Timeouts(connect=10, read=1, total=5).effective_connect == 5
    assert Timeouts(connect=1, total=5).effective_connect == 1


def response(body: bytes, content_type: str | None = "text/html", status: int = 200) -> Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return Response(Request("http://a.test/"), status, headers=headers, body=body)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "content_type", "encoding"),
    [
        ("café".encode("cp1252"), "text/html; charset=windows-1252", "cp1252"),
        (b"\xef\xbb\xbfcaf\xc3\xa9", "text/html; charset=iso-8859-1", "utf-8"),  # BOM wins
        ('<meta charset="iso-8859-2">café'.encode("iso-8859-2"), "text/html", "iso8859-2"),
        ("café".encode(), None, "utf-8"),
    ],
)
def test_text_decoding_order(body: bytes, content_type: str | None, encoding: str) -> None:
    decoded = response(body, content_type)
    assert decoded.encoding.replace("_", "-") == encoding.replace("_", "-")
    assert "café" in decoded.text


def test_undeclared_legacy_encoding_is_detected() -> None:
    text = "Добрый день, это страница на русском языке. " * 20
    assert response(text.encode("cp1251"), "text/html").text == text


def test_invalid_bytes_never_raise() -> None:
    text = response(b"ok \xff\xfe\xfa end", "text/html; charset=utf-8").text
    assert text.startswith("ok ")
    assert text.endswith(" end")


def test_raise_for_status() -> None:
    ok = response(b"", status=204)
    assert ok.raise_for_status() is ok
    with pytest.raises(HTTPStatusError, match="404") as caught:
        response(b"", status=404).raise_for_status()
    assert isinstance(caught.value, FetchError)
    assert caught.value.response.status == 404


def test_headers_are_case_insensitive_and_multi_valued() -> None:
    headers = [("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Content-Type", "text/html")]
    reply = Response(Request("http://a.test/"), 200, headers=headers)  # type: ignore[arg-type]
    assert reply.headers.getall("SET-COOKIE") == ["a=1", "b=2"]
    assert reply.content_type == "text/html"
