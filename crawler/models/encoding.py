"""Decode an HTML body the way browsers do.

Order (WHATWG "encoding sniffing"): a byte-order mark, then the charset of the
Content-Type header, then ``<meta charset>`` in the first bytes, then detection.
A BOM wins over the header because it cannot be wrong about the bytes that
follow it, while headers often are. Undecodable bytes become U+FFFD: text is
always produced, never an exception.

A label is used only when it names a codec that turns any bytes into text. Python
also knows codecs that map bytes to bytes (``base64``, ``rot13``, ``zlib``) and text
codecs that cannot decode a document (``undefined``, ``idna``, ``punycode``); like a
label no codec knows, such a label is treated as absent, as a browser ignores a
label it does not support.
"""

from __future__ import annotations

import codecs
from functools import lru_cache

from w3lib.encoding import (
    html_body_declared_encoding,
    http_content_type_encoding,
    read_bom,
    to_unicode,
)

__all__ = ["decode_html"]

_DETECT_BYTES = 64 * 1024
_DEFAULT = "utf-8"
# Text codecs (``_is_text_encoding``) that still cannot decode a document: one
# always raises, the other two refuse the "replace" error handler or non-ASCII bytes.
_UNDECODABLE = frozenset({"undefined", "idna", "punycode"})


@lru_cache(maxsize=256)
def _usable(encoding: str) -> bool:
    """Whether ``encoding`` (a name w3lib resolved) can decode any body, with U+FFFD."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        return False
    return info._is_text_encoding and info.name not in _UNDECODABLE


def _detect(body: bytes) -> str | None:
    sample = body[:_DETECT_BYTES]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut multi-byte sequence at the end of the sample is still UTF-8.
        if exc.start < len(sample) - 3:
            from charset_normalizer import from_bytes

            best = from_bytes(sample).best()
            return best.encoding if best is not None else None
    return "utf-8"


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Return ``(encoding, text)`` for a response body; never raises.

    ``w3lib.encoding.html_to_unicode``, step by step, so that an unusable label
    falls through to the next step instead of reaching the codec.
    """
    bom_encoding, bom = read_bom(body)
    if bom_encoding is not None and bom is not None:
        return bom_encoding, to_unicode(body[len(bom) :], bom_encoding)
    encoding = http_content_type_encoding(content_type)
    if encoding is None or not _usable(encoding):
        encoding = html_body_declared_encoding(body)
        if encoding is None or not _usable(encoding):
            encoding = _detect(body)
            if encoding is None or not _usable(encoding):
                encoding = _DEFAULT
    if encoding in ("utf-16", "utf-32"):  # no BOM (read above): big-endian, as w3lib reads it
        encoding += "-be"
    return encoding, to_unicode(body, encoding)
