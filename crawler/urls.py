"""URL checks and keys shared by the engines and the middleware."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from w3lib.url import canonicalize_url
from yarl import URL

__all__ = [
    "canonicalize",
    "fingerprint",
    "host_key",
    "is_http_url",
    "is_plain_url",
    "origin",
    "origin_and_path",
    "parse_http_url",
    "redact_password",
    "usual_host_and_path",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}

_SCHEMES = frozenset({"http", "https"})


def parse_http_url(url: str) -> URL:
    """Parse an absolute http(s) URL or raise ``ValueError`` saying what is wrong."""
    if isinstance(url, str) and not url.isascii():
        try:
            url.encode()
        except UnicodeEncodeError as exc:
            # yarl would silently drop it and fetch another URL than the one asked for.
            raise ValueError(f"not a URL: {url!r} (a lone surrogate at {exc.start})") from None
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a URL: {url!r} ({exc})") from exc
    if parsed.scheme not in _SCHEMES:
        raise ValueError(f"unsupported scheme {parsed.scheme!r} in {url!r}: expected http or https")
    if not parsed.host:
        raise ValueError(f"no host in {url!r}")
    return parsed


# Certainly fetchable as written: lower-case http(s), ASCII labels that are not
# A-labels (which IDNA must decode), a port of at most five digits, printable ASCII after.
# The path runs to the first "?" or "#" (the class is [!-~] without them).
_FETCHABLE = re.compile(
    r"(?P<scheme>https?)://(?P<host>(?!xn--)[a-z0-9-]{1,63}(?:\.(?!xn--)[a-z0-9-]{1,63})*)"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[!\"$->@-~]*)?(?:[?#][!-~]*)?"
)


def is_http_url(url: str) -> bool:
    """Whether ``parse_http_url`` accepts ``url``: a regex answers for the usual
    spelling (ten times faster than parsing), the parser for the rest. The scope
    asks this of every link found."""
    if _usual(url) is not None:
        return True
    try:
        parse_http_url(url)
    except ValueError:
        return False
    return True


def usual_host_and_path(url: str) -> tuple[str, str] | None:
    """``(host, path)`` of an http(s) URL in the usual spelling, as ``urlsplit`` reads
    them, without parsing; ``None`` when only the parser can tell (and for what it
    refuses)."""
    match = _usual(url)
    return None if match is None else (match["host"], match["path"] or "")


def _port(usual: re.Match[str]) -> int:
    port = usual["port"]
    return _DEFAULT_PORTS[usual["scheme"]] if port is None else int(port)


def _usual(url: str) -> re.Match[str] | None:
    match = _FETCHABLE.fullmatch(url)
    if match is None or (match["port"] is not None and int(match["port"]) > 65535):
        return None
    return match


def host_key(url: str | URL) -> str:
    """``host:port`` as written in the URL (default port filled in).

    127.0.0.1 and localhost are different keys on purpose: rate limits and
    politeness apply to the name a crawl was told to visit.
    """
    if isinstance(url, str) and (usual := _usual(url)) is not None:  # most URLs: no parse
        return f"{usual['host']}:{_port(usual) or ''}"
    parsed = url if isinstance(url, URL) else URL(url)
    return f"{parsed.host or ''}:{parsed.port or ''}"


# Canonical as written, but for the order of its query: lower-case scheme and host, a
# port that is not the default, a path of unreserved characters without dot segments,
# maybe a query of key=value pairs of unreserved characters, nothing after it.
_PLAIN = re.compile(
    r"(https?)://(?:[a-z0-9-]{1,63}\.)*[a-z0-9-]{1,63}(?::([1-9][0-9]{0,4}))?"
    r"(?:/(?!\.\.?(?:[/?]|$))[A-Za-z0-9._~-]*)+"
    r"(?:\?([A-Za-z0-9._~-]+=[A-Za-z0-9._~-]*(?:&[A-Za-z0-9._~-]+=[A-Za-z0-9._~-]*)*))?"
)


def _plain(url: str) -> re.Match[str] | None:
    plain = _PLAIN.fullmatch(url)
    if plain is not None:
        port = plain[2]
        if port is None or (int(port) <= 65535 and int(port) != _DEFAULT_PORTS[plain[1]]):
            return plain
    return None


def is_plain_url(url: str) -> bool:
    """Whether ``url`` is an http(s) URL in the plainest spelling (``_PLAIN``, a port
    that is not the default), which yarl, w3lib and browsers all leave as written, but
    for ``canonicalize``'s order of its query."""
    return _plain(url) is not None


@lru_cache(maxsize=8192)  # links repeat within a page and between neighbours; bounded
def canonicalize(url: str) -> str:
    """The form two URLs share when they name the same page: query sorted, fragment
    dropped, scheme and host lower-cased, default port dropped, percent-encoding
    normalised. Path case is kept: servers may treat it as significant.

    Never raises: a string that is not a usable URL (a port over 65535, an
    unclosed IPv6 bracket, a lone surrogate) comes back as given, whitespace
    stripped (and canonicalised, when only the whitespace made it unusable), so the
    frontier can still key it. Whether a URL may be fetched is
    ``parse_http_url``'s question (the scope asks it), not this one's.
    """
    plain = _plain(url)
    if plain is not None:  # most links: nothing to normalise, and w3lib is slow
        query = plain[3]
        return url if query is None else _sorted_query(url, query)
    try:
        return _canonicalize(url)
    except ValueError:  # UnicodeError included
        stripped = url.strip()  # what a stripped spelling gives, so the answer is a fixed point
        return stripped if stripped == url else canonicalize(stripped)


def _sorted_query(url: str, query: str) -> str:
    """``url`` with its plain query's pairs sorted by key, then value, as w3lib sorts them."""
    pairs = query.split("&")
    if len(pairs) > 1:
        ordered = sorted(pairs, key=lambda pair: pair.partition("="))
        if ordered != pairs:
            return f"{url[: len(url) - len(query)]}{'&'.join(ordered)}"
    return url


def _canonicalize(url: str) -> str:
    canonical = canonicalize_url(url)
    parts = urlsplit(canonical)
    try:
        port = parts.port
    except ValueError:
        return canonical
    if port is not None and _DEFAULT_PORTS.get(parts.scheme) == port:
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.username is not None:
            credentials = parts.username + (f":{parts.password}" if parts.password else "")
            netloc = f"{credentials}@{netloc}"
        canonical = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return canonical


def fingerprint(url: str) -> bytes:
    """16 bytes identifying the canonical URL: the frontier's dedup key."""
    # surrogatepass: a lone surrogate in an unusable URL must not make this raise.
    key = canonicalize(url).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(key, digest_size=16).digest()


def origin(url: str | URL) -> str:
    """``scheme://host:port``, the default port spelled out, so ``http://a`` and
    ``http://a:80`` share one robots.txt and ``https://a`` has its own."""
    if isinstance(url, str) and (usual := _usual(url)) is not None:  # most URLs: no parse
        return _usual_origin(usual)
    return _parsed_origin(url if isinstance(url, URL) else URL(url))


def origin_and_path(url: str) -> tuple[str, str]:
    """``url``'s origin and its path, percent-decoded as yarl decodes it; ``ValueError``
    for what ``parse_http_url`` refuses. One look at the usual URL serves both."""
    usual = _usual(url)
    if usual is not None and "%" not in (path := usual["path"] or "/"):  # nothing to decode
        return _usual_origin(usual), path
    parsed = parse_http_url(url)
    return _parsed_origin(parsed), parsed.path


def _usual_origin(usual: re.Match[str]) -> str:
    return f"{usual['scheme']}://{usual['host']}:{_port(usual)}"


def _parsed_origin(parsed: URL) -> str:
    host = parsed.raw_host or ""
    return f"{parsed.scheme}://{f'[{host}]' if ':' in host else host}:{parsed.port}"


def redact_password(url: str) -> str:
    """``url`` for messages and logs: never its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))
