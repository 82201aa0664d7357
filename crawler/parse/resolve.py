"""Links made absolute, as browsers make them, and fast.

``resolve_url`` is the rule (WHATWG's where yarl is laxer); ``Resolver`` applies it to
the links of one page, remembering answers across pages and joining the plain ones as
written, since a crawl resolves some eighty links a page.
"""

from __future__ import annotations

import re

from yarl import URL

from crawler.urls import is_plain_url

__all__ = ["Resolver", "resolve_url"]

_SCHEMES = frozenset({"http", "https"})
_DROPPED_PREFIXES = ("javascript:", "mailto:", "tel:", "data:", "#")
# WHATWG: tabs and newlines anywhere in a URL are removed before parsing it.
_STRIP_INSIDE = str.maketrans("", "", "\t\n\r")
# Code points WHATWG forbids in a host; yarl accepts some of them.
_BAD_HOST = re.compile(r"[\x00-\x20\"<>\\^`{|}]")


def resolve_url(href: str | None, base: URL | str | None) -> str | None:
    """``href`` made absolute against ``base``, without fragment, or ``None``.

    ``None`` when the result is not an http(s) URL with a valid host and port,
    or when ``href`` is empty, a same-document ``#fragment``, or does not parse.
    """
    if not href:
        return None
    href = href.strip()
    if "\t" in href or "\n" in href or "\r" in href:
        href = href.translate(_STRIP_INSIDE)
    if not href or href[:11].lower().startswith(_DROPPED_PREFIXES):
        return None
    # The fragment starts at the first "#"; dropping it before parsing is cheaper.
    href = href.partition("#")[0]
    if "\\" in href:
        # Browsers read "\" as "/" in http(s) URLs ("\\evil.example" is a host).
        href = href.replace("\\", "/")
    try:
        url = URL(href)
        if not url.scheme:
            if base is None:
                return None
            url = (base if isinstance(base, URL) else URL(base)).join(url)
        if url.scheme not in _SCHEMES:
            return None
        host = url.raw_host
        if not host or _BAD_HOST.search(host):
            return None
        if "xn--" in host and not url.host:  # an A-label that is not punycode raises
            return None
        return str(url)
    except (ValueError, TypeError, UnicodeError):
        return None


# A segment of unreserved characters that is not "." or "..", and what may follow the
# last one in a plain href (before any fragment): a "/", a plain query.
_SEGMENT = r"[\w~-][\w.~-]*"
_END = r"/?(?:\?[\w.~=&-]+)?"
# A root-relative href that joins as it is written: such segments and end. The product
# pages a shop links once each (related items) are mostly these; yarl takes 20 times
# longer to say the same.
_PLAIN_PATH = re.compile(rf"(?:/{_SEGMENT})+{_END}(?:#.*)?", re.ASCII)
# A path-relative href that joins as written onto the base's folder: "./" and "../"
# steps, then such segments ("12.html", "../p/12.html#reviews").
_PLAIN_RELATIVE = re.compile(rf"((?:\.\.?/)*)({_SEGMENT}(?:/{_SEGMENT})*{_END})(?:#.*)?", re.ASCII)

# Answers remembered per thread or process, forgotten all at once: at most
# _CONTEXTS_MAX memos of _RESOLVED_MAX answers each (about 5 MB at worst).
_RESOLVED_MAX = 4096
_CONTEXTS_MAX = 8
# Answers by what they depend on (an origin, a scheme, or nothing: "" for absolute
# hrefs), then by href.
_resolved: dict[str, dict[str, str | None]] = {}
# Whether a base's folder joins plain relative hrefs as written, by folder.
_folders: dict[str, bool] = {}


def _memo(context: str) -> dict[str, str | None]:
    memo = _resolved.get(context)
    if memo is None:
        if len(_resolved) >= _CONTEXTS_MAX:  # many origins: a crawl of many sites
            _resolved.clear()
        memo = _resolved[context] = {}
    return memo


class Resolver:
    """``resolve_url`` against one base, remembering answers across pages.

    A shop's menus and footers name the same few dozen URLs on every page, as
    absolute or root-relative links whose answer depends on the base's scheme and
    authority alone; those are looked up, not parsed again. Root-relative links of
    plain segments are joined as written (``_PLAIN_PATH``), and so are plain absolute
    ones (``is_plain_url``) and plain links relative to the page's folder
    (``_PLAIN_RELATIVE``). Every other href is resolved as it comes. Threads may share
    the memo: an answer depends only on its key, so a race stores the same value twice."""

    __slots__ = ("_absolute", "_base", "_folder", "_origin", "_plain", "_rooted", "_scheme",
                 "_schemed", "_text")  # fmt: skip

    def __init__(self, base: URL | None) -> None:
        self._base = base
        self._text = text = "" if base is None else str(base)
        self._folder: str | None = None  # the base up to its path's last "/", once asked
        authority_end = text.find("/", text.find("//") + 2)
        self._origin = text if authority_end < 0 else text[:authority_end]
        self._scheme = "" if base is None else base.scheme
        self._absolute = _memo("")
        self._rooted = _memo(self._origin)
        self._schemed = _memo(self._scheme + ":")
        self._plain = False
        self._plain = base is not None and self("/") == self._origin + "/"

    def __call__(self, href: str) -> str | None:
        if href[:1] == "/":
            if href[1:2] == "/":
                memo = self._schemed
                if not (href[2:3].isalnum() or href[2:3] == "["):  # no host: not base-free
                    return resolve_url(href, self._base)
            else:
                memo = self._rooted
        else:
            memo = self._absolute
            lowered = href[:6].lower()
            if not (lowered[:5] == "http:" or lowered == "https:"):
                # relative to the page's path or query: seldom shared
                return self._relative_join(href) or resolve_url(href, self._base)
        if href in memo:
            return memo[href]
        if "\\" in href:  # read as "/": "/\\x" is "//x", relative to the base's path
            return resolve_url(href, self._base)
        url = self._plain_join(href) or resolve_url(href, self._base)
        if len(memo) >= _RESOLVED_MAX:
            memo.clear()
        memo[href] = url
        return url

    def _plain_join(self, href: str) -> str | None:
        """``href`` as written, without its fragment, when it is a plain absolute or
        scheme-relative URL, or a plain path on the base's own origin."""
        if href[:1] != "/":  # absolute
            url = href.partition("#")[0]
        elif href[1:2] == "/":  # scheme-relative: "//host:port/..."
            url = f"{self._scheme}:{href.partition('#')[0]}"
        else:
            if not self._plain or _PLAIN_PATH.fullmatch(href) is None:
                return None
            return self._origin + href.partition("#")[0]
        # yarl refuses a host of "xn--" labels that are not punycode.
        return url if is_plain_url(url) and "xn--" not in url else None

    def _relative_join(self, href: str) -> str | None:
        """``href`` joined onto the base's folder as written, when it is plain
        (``_PLAIN_RELATIVE``) and the folder joins so (asked of yarl once a folder)."""
        match = _PLAIN_RELATIVE.fullmatch(href)
        if match is None or self._base is None:
            return None
        folder = self._folder
        if folder is None:
            folder = self._folder = _folder(self._text, self._origin, self._base)
        if not folder:
            return None
        steps, rest = match.groups()
        for _ in range(steps.count("../")):  # each goes up a folder, never past the root
            up = folder.rfind("/", len(self._origin), len(folder) - 1)
            if up < 0:
                break
            folder = folder[: up + 1]
        return folder + rest


def _folder(text: str, origin: str, base: URL) -> str:
    """``text`` (the base, written) up to its path's last "/", or "" when yarl does not
    join plain relative hrefs onto it as written."""
    query = text.find("?")
    path = text[len(origin) : len(text) if query < 0 else query]
    folder = origin + path[: path.rfind("/") + 1] if path.startswith("/") else ""
    known = _folders.get(folder)
    if known is None:
        if len(_folders) >= _RESOLVED_MAX:
            _folders.clear()
        known = _folders[folder] = bool(folder) and resolve_url("x", base) == folder + "x"
    return folder if known else ""
