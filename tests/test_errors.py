"""One error record, built from an exception in one place, for errors.jsonl and the health checks."""

from __future__ import annotations

import pytest

from crawler import ErrorRecord, Request, Response
from crawler.errors import (
    BlockedAddress,
    BodyTooLarge,
    ConnectError,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    InvalidURL,
    ParseError,
    ProtocolError,
    RetryLater,
    SinkError,
    TooManyRedirects,
)

NOT_FOUND = Response(Request("http://a.test/x"), 404, {})


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (FetchTimeout("slow", phase="read"), "timeout"),
        (ConnectError("no", kind="refused"), "refused"),
        (ConnectError("no", kind="dns"), "dns"),
        (ConnectError("no"), "connect"),
        (BodyTooLarge("big"), "too_large"),
        (ProtocolError("garbage"), "protocol"),
        (TooManyRedirects("loop"), "too_many_redirects"),
        (BlockedAddress("internal"), "blocked"),
        (InvalidURL("ftp"), "invalid_url"),
        (HTTPStatusError("HTTP 404", response=NOT_FOUND), "http_status"),
        (ParseError("bad", url="http://a.test/", site="S"), "parse"),
        (SinkError("full", path="/out/pages/x"), "write"),
        (RetryLater(0.0), "timeout"),
        (FetchError("other"), "protocol"),
    ],
)
def test_every_failure_has_its_kind(error: Exception, kind: str) -> None:
    record = ErrorRecord.of(error, url="http://a.test/x", referrer="http://a.test/")
    assert (record.kind, record.message, record.referrer) == (kind, str(error), "http://a.test/")


def test_the_status_comes_from_the_answer() -> None:
    error = HTTPStatusError("HTTP 404", response=NOT_FOUND)
    assert ErrorRecord.of(error, url="http://a.test/x").status == 404
    redirect = ErrorRecord.of(TooManyRedirects("loop"), url="http://a.test/x", status=301)
    assert redirect.status == 301
    assert ErrorRecord.of(FetchTimeout("t", phase="total"), url="http://a.test/x").status is None


def test_a_record_is_a_line_of_errors_jsonl_and_back() -> None:
    record = ErrorRecord("http://a.test/x", "http_status", 503, "HTTP 503", "http://a.test/")
    line = record.to_json()
    assert list(line) == ["url", "kind", "status", "message", "referrer"]
    assert ErrorRecord.from_json(line) == record
    assert ErrorRecord.from_json({"kind": "timeout"}) is None
    assert ErrorRecord.from_json({"url": "u", "kind": "x", "status": "500"}) == ErrorRecord(
        "u", "x", None, "", None
    )
