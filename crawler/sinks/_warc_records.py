"""WARC 1.1 records for one fetch, rendered with warcio: what a page becomes in a WARC file.

A fetch becomes a ``response`` (or, for an unchanged page in a later round, a
``revisit``) followed by the ``request`` that is ``WARC-Concurrent-To`` it; each
record is one gzip member when the file is compressed, so tools can seek to it.

The engines hand back *decoded* bodies (no content coding, no chunking), so the
stored HTTP headers are made to describe the bytes stored: ``Content-Encoding``
and ``Transfer-Encoding`` become ``X-Orig-Content-Encoding`` and
``X-Orig-Transfer-Encoding`` (browsertrix-crawler's convention for the same
situation; a replay tool then serves the body as it is) and ``Content-Length`` is
the stored body's length (a 304's is dropped: a replay joins its headers to the
original's body). Every other header stays as received, in order,
repeats included; a character that cannot stand in a header line (a control
character, anything past ASCII) is percent-encoded as UTF-8, as warcio would.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import importlib.metadata
import io
import re
import string
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from urllib.parse import quote, urlsplit, urlunsplit

from w3lib.url import safe_url_string
from warcio.statusandheaders import StatusAndHeaders  # type: ignore[import-untyped]
from warcio.warcwriter import WARCWriter  # type: ignore[import-untyped]

from crawler.sinks._paths import _utf8

__all__ = [
    "IDENTICAL_PAYLOAD",
    "NOT_MODIFIED",
    "WarcFetch",
    "WarcRef",
    "payload_digest",
    "render_exchange",
    "render_warcinfo",
]

WARC_VERSION = "WARC/1.1"
NOT_MODIFIED = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
IDENTICAL_PAYLOAD = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
# zlib's default level: on HTML about 30% faster than warcio's fixed level 9, as small within 1%.
GZIP_LEVEL = 6
_RENAMED = {
    "content-encoding": "X-Orig-Content-Encoding",
    "transfer-encoding": "X-Orig-Transfer-Encoding",
}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HTTP_VERSION = re.compile(r"HTTP/[0-9](\.[0-9])?")
_PLAIN = frozenset(string.printable) - frozenset("\r\n\x0b\x0c")  # tab and space stay


@dataclass(frozen=True, slots=True, kw_only=True)
class WarcFetch:
    """One HTTP exchange as the crawler saw it; the body is the decoded one.

    Headers are ``(name, value)`` pairs in the order sent or received (a
    multidict's ``items()`` will do). ``fetched_at`` must carry a time zone; it
    becomes the records' ``WARC-Date`` in UTC, to the microsecond.
    """

    url: str
    status: int
    fetched_at: datetime
    body: bytes = b""
    reason: str = ""  # "" means the standard phrase for the status
    method: str = "GET"
    request_headers: Iterable[tuple[str, str]] = ()
    response_headers: Iterable[tuple[str, str]] = ()
    http_version: str = "HTTP/1.1"

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 999:
            raise ValueError(f"not an HTTP status: {self.status!r}")
        if self.fetched_at.tzinfo is None:
            raise ValueError("fetched_at must be an aware datetime (UTC)")
        if not _TOKEN.fullmatch(self.method):
            raise ValueError(f"not an HTTP method: {self.method!r}")
        if not _HTTP_VERSION.fullmatch(self.http_version):
            raise ValueError(f"not an HTTP version: {self.http_version!r}")
        object.__setattr__(self, "request_headers", tuple(self.request_headers))
        object.__setattr__(self, "response_headers", tuple(self.response_headers))


@dataclass(frozen=True, slots=True)
class WarcRef:
    """What a later revisit needs of a ``response`` record: keep it with the page."""

    record_id: str  # "<urn:uuid:...>"
    date: str  # the record's WARC-Date
    target_uri: str
    payload_digest: str  # "sha1:BASE32"


def payload_digest(body: bytes) -> str:
    """The ``WARC-Payload-Digest`` of a (decoded) body: equal digests, same page."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


def warc_date(when: datetime) -> str:
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def new_ref(fetch: WarcFetch, digest: str) -> WarcRef:
    """The identity of the record a fetch becomes: fixed before it is rendered."""
    return WarcRef(
        f"<urn:uuid:{uuid.uuid4()}>", warc_date(fetch.fetched_at), target_uri(fetch.url), digest
    )


def target_uri(url: str) -> str:
    """``url`` as an ASCII URI (IDNA host, UTF-8 percent-encoding), without its fragment."""
    try:
        uri = safe_url_string(url)
    except UnicodeError:  # a lone surrogate: percent-encode the bytes it stands for
        uri = quote(url, safe=string.punctuation, errors="surrogateescape")
    return urlunsplit(urlsplit(uri)._replace(fragment=""))


def _field(text: str) -> str:
    """A header name or value that cannot break its line: see the module docstring."""
    if all(c in _PLAIN for c in text):
        return text
    return "".join(c if c in _PLAIN else quote(_utf8(c), safe="") for c in text)


def stored_headers(headers: Iterable[tuple[str, str]], length: int | None) -> list[tuple[str, str]]:
    """Response headers describing a decoded body of ``length`` bytes; ``None`` for a
    304, which has no body (a replay joins its headers to the original's body), so
    any ``Content-Length`` it carries is dropped."""
    out: list[tuple[str, str]] = []
    seen_length = length is None
    for name, value in headers:
        key = name.strip().lower()
        if key in _RENAMED:
            out.append((_RENAMED[key], _field(value)))
        elif key != "content-length":
            out.append((_field(name), _field(value)))
        elif not seen_length:  # the first one, in its place; repeats would contradict it
            out.append((_field(name), str(length)))
            seen_length = True
    if not seen_length:
        out.append(("Content-Length", str(length)))
    return out


def _http_response(fetch: WarcFetch, revisit: bool) -> StatusAndHeaders:
    reason = fetch.reason
    if not reason:
        with contextlib.suppress(ValueError):
            reason = HTTPStatus(fetch.status).phrase
    length = None if revisit and fetch.status == 304 else len(fetch.body)
    headers = stored_headers(fetch.response_headers, length)
    return StatusAndHeaders(f"{fetch.status} {_field(reason)}", headers, fetch.http_version)


def _http_request(fetch: WarcFetch, uri: str) -> StatusAndHeaders:
    parts = urlsplit(uri)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [(_field(name), _field(value)) for name, value in fetch.request_headers]
    return StatusAndHeaders(f"{path} {fetch.http_version}", headers, protocol=fetch.method)


def _serialize(writer: WARCWriter, record: object, compress: bool) -> bytes:
    out = writer.out
    out.seek(0)
    out.truncate()
    writer.write_record(record)
    data: bytes = out.getvalue()
    return zlib.compress(data, GZIP_LEVEL, wbits=31) if compress else data


def _writer() -> WARCWriter:
    """warcio renders the record uncompressed; we gzip it as one member ourselves
    (warcio's own gzip is fixed at level 9)."""
    return WARCWriter(io.BytesIO(), gzip=False, warc_version=WARC_VERSION)


def render_exchange(
    fetch: WarcFetch, ref: WarcRef, compress: bool, refers_to: WarcRef | None = None
) -> bytes:
    """The response (or, with ``refers_to``, the revisit) record, then the request.

    Runs in a worker thread: digests and compression are the crawl's heaviest
    per-page work after parsing.
    """
    writer = _writer()
    headers = {
        "WARC-Type": "response" if refers_to is None else "revisit",
        "WARC-Record-ID": ref.record_id,
        "WARC-Date": ref.date,
        "WARC-Target-URI": ref.target_uri,
        "WARC-Payload-Digest": ref.payload_digest,
    }
    payload: io.BytesIO | None = io.BytesIO(fetch.body)
    if refers_to is not None:  # headers only: the payload is the original's
        headers["WARC-Profile"] = NOT_MODIFIED if fetch.status == 304 else IDENTICAL_PAYLOAD
        headers["WARC-Refers-To"] = refers_to.record_id
        headers["WARC-Refers-To-Target-URI"] = refers_to.target_uri
        headers["WARC-Refers-To-Date"] = refers_to.date
        headers["WARC-Payload-Digest"] = refers_to.payload_digest
        payload = None
    response = writer.create_warc_record(
        ref.target_uri,
        headers["WARC-Type"],
        payload=payload,
        length=len(fetch.body) if payload is not None else 0,
        warc_headers_dict=headers,
        http_headers=_http_response(fetch, revisit=refers_to is not None),
    )
    request = writer.create_warc_record(
        ref.target_uri,
        "request",
        warc_headers_dict={
            "WARC-Type": "request",
            "WARC-Record-ID": f"<urn:uuid:{uuid.uuid4()}>",
            "WARC-Date": ref.date,
            "WARC-Target-URI": ref.target_uri,
            "WARC-Concurrent-To": ref.record_id,
        },
        http_headers=_http_request(fetch, ref.target_uri),
    )
    return _serialize(writer, response, compress) + _serialize(writer, request, compress)


def render_warcinfo(filename: str, description: str, compress: bool) -> bytes:
    """The record that opens every file: who wrote it, in what format, for what crawl."""
    writer = _writer()
    info = {
        "software": _software(),
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "description": " ".join(description.splitlines()),
    }
    record = writer.create_warcinfo_record(filename, info)
    return _serialize(writer, record, compress)


@functools.cache
def _software() -> str:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    return f"crawlwell/{version('crawlwell')} warcio/{version('warcio')}"
