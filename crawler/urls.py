"""URL checks and keys shared by the engines and the middleware."""

from __future__ import annotations

from yarl import URL

__all__ = ["host_key", "parse_http_url"]

_SCHEMES = frozenset({"http", "https"})


def parse_http_url(url: str) -> URL:
    """Parse an absolute http(s) URL or raise ``ValueError`` saying what is wrong."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a URL: {url!r} ({exc})") from exc
    if parsed.scheme not in _SCHEMES:
        raise ValueError(f"unsupported scheme {parsed.scheme!r} in {url!r}: expected http or https")
    if not parsed.host:
        raise ValueError(f"no host in {url!r}")
    return parsed


def host_key(url: str | URL) -> str:
    """``host:port`` as written in the URL (default port filled in).

    127.0.0.1 and localhost are different keys on purpose: rate limits and
    politeness apply to the name a crawl was told to visit.
    """
    parsed = url if isinstance(url, URL) else URL(url)
    return f"{parsed.host or ''}:{parsed.port or ''}"
