"""Decode an HTML body the way browsers do.

Order (WHATWG "encoding sniffing"): a byte-order mark, then the charset of the
Content-Type header, then ``<meta charset>`` in the first bytes, then detection.
A BOM wins over the header because it cannot be wrong about the bytes that
follow it, while headers often are. Undecodable bytes become U+FFFD: text is
always produced, never an exception.
"""

from __future__ import annotations

from w3lib.encoding import html_to_unicode

__all__ = ["decode_html"]

_DETECT_BYTES = 64 * 1024


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
    """Return ``(encoding, text)`` for a response body."""
    encoding, text = html_to_unicode(content_type, body, auto_detect_fun=_detect)
    return str(encoding), str(text)
