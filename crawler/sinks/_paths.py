"""URL → relative file path, such that the path can never leave the output folder.

The mapping is ``host[_port]/dir/.../name``. Dot segments (also spelled ``%2e``)
resolve as a browser resolves them, clamped at the host folder; anything that is
data rather than structure (``%2f``, ``:``, control characters, the characters
Windows forbids, ``%`` itself) is percent-encoded inside its segment, so distinct
URLs stay distinct and no segment can name a parent, a root or a drive.
"""

from __future__ import annotations

import codecs
import hashlib
import unicodedata
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

__all__ = ["resolve_inside", "safe_relative_path"]

INDEX = "index.html"
_SEGMENT_MAX = 120  # bytes; NAME_MAX is 255, leaving room for temp-file names
_PATH_MAX = 1024  # bytes of the relative path; PATH_MAX is 4096 for the whole path
_SUFFIX_MAX = 16
_DEFAULT_PORTS = {"http": 80, "https": 443}
_FORBIDDEN = frozenset('/\\<>:"|?*%')
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$", "clock$"}
    | {f"{stem}{n}" for stem in ("com", "lpt") for n in "0123456789¹²³"}
)


def _lone_surrogates(exc: UnicodeError) -> tuple[bytes, int]:
    """The bytes of the lone surrogates UTF-8 cannot encode: U+DC80-U+DCFF as the byte
    ``unquote(errors="surrogateescape")`` made it from (``%FF`` keeps its name), any
    other as the three bytes "surrogatepass" gives it."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    chunk = exc.object[exc.start : exc.end]
    return b"".join(
        bytes([ord(c) - 0xDC00])
        if "\udc80" <= c <= "\udcff"
        else c.encode("utf-8", "surrogatepass")
        for c in chunk
    ), exc.end


codecs.register_error("crawler.paths.surrogates", _lone_surrogates)


def _utf8(text: str) -> bytes:
    """``text`` as UTF-8, for any Python string: a URL may hold lone surrogates."""
    return text.encode("utf-8", "crawler.paths.surrogates")


def _digest(text: str, size: int = 10) -> str:
    return hashlib.sha256(_utf8(text)).hexdigest()[:size]


def _escape(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in _utf8(char))


def _clean(text: str) -> str:
    """One decoded segment as a name that is legal and inert on POSIX and Windows."""
    out = "".join(
        _escape(c)
        if c in _FORBIDDEN or (unicodedata.category(c) in _ESCAPED_CATEGORIES and c != " ")
        else c
        for c in text
    )
    if out in ("", ".", ".."):
        return "".join(_escape(c) for c in out) or "_"
    if out[-1] in ". ":  # Windows silently strips these, merging names
        out = out[:-1] + _escape(out[-1])
    if out.split(".")[0].rstrip(" ").lower() in _WINDOWS_RESERVED:
        out = _escape(out[0]) + out[1:]
    return _shorten(out)


def _shorten(name: str) -> str:
    """Cut a name over ``_SEGMENT_MAX`` bytes, keeping a short suffix, adding a hash."""
    if len(_utf8(name)) <= _SEGMENT_MAX:
        return name
    suffix = PurePosixPath(name).suffix
    suffix = suffix if len(suffix) <= _SUFFIX_MAX else ""
    room = _SEGMENT_MAX - len(suffix) - 11
    head = _utf8(name)[:room].decode("utf-8", "ignore")
    return f"{head}~{_digest(name)}{suffix}"


def _host_folder(scheme: str, hostname: str | None, port: int | None) -> str:
    host = (hostname or "").replace(":", "_")  # IPv6 literals
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}_{port}"
    return _clean(host) if host else "_"


def _segments(path: str) -> tuple[list[str], bool]:
    """Decoded segments with dot segments resolved, and whether the path names a folder."""
    segments: list[str] = []
    folder = True
    for raw in path.split("/"):
        text = unquote(raw, errors="surrogateescape")  # %2f decodes *inside* the segment
        folder = text in ("", ".", "..")
        if text == "..":
            if segments:
                segments.pop()
        elif text not in ("", "."):
            segments.append(text)
    return segments, folder


def safe_relative_path(url: str) -> PurePosixPath:
    """The relative file path for ``url``: ``host_port/dir/page.html``.

    A folder URL (trailing slash, or a last segment without a suffix) gets
    ``index.html``, so ``/a`` and ``/a/b`` never need ``a`` to be both a file and a
    folder. A query is hashed into the name (``page~1a2b3c4d5e.html``); the fragment
    is ignored. Over-long segments and paths are cut and given a hash.
    """
    try:
        parts = urlsplit(url.replace("\\", "/"))  # browsers treat \ as / in http(s)
        try:
            port = parts.port
        except ValueError:
            port = None
        host = _host_folder(parts.scheme.lower(), parts.hostname, port)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return PurePosixPath("_invalid", f"~{_digest(url)}.html")
    decoded, folder = _segments(parts.path)
    folders = [_clean(text) for text in decoded]
    name = INDEX
    if folders and not folder and PurePosixPath(folders[-1]).suffix:
        name = folders.pop()
    if parts.query:
        stem, suffix = name.rsplit(".", 1) if "." in name[1:] else (name, "")
        name = f"{stem}~{_digest(parts.query)}" + (f".{suffix}" if suffix else "")
    relative = "/".join([host, *folders, name])
    if len(_utf8(relative)) > _PATH_MAX:
        kept: list[str] = []
        used = len(host) + 1
        for folder_name in folders:
            used += len(_utf8(folder_name)) + 1
            if used > _PATH_MAX - 2 * _SEGMENT_MAX:
                break
            kept.append(folder_name)
        suffix = PurePosixPath(name).suffix
        suffix = suffix if len(suffix) <= _SUFFIX_MAX else ""
        folders, name = kept, f"~{_digest(relative, 16)}{suffix}"
    return PurePosixPath(host, *folders, name)


def resolve_inside(root: Path, relative: PurePosixPath) -> Path:
    """``root / relative`` resolved (symlinks followed), or ``ValueError`` if the result
    is not strictly inside ``root``. A second check that does not trust the first."""
    text = str(relative)
    if relative.is_absolute() or "\x00" in text or "\\" in text:
        raise ValueError(f"not a safe relative path: {text!r}")
    if any(part in ("", ".", "..") for part in relative.parts):
        raise ValueError(f"not a safe relative path: {text!r}")
    base = root.resolve()
    target = base.joinpath(*relative.parts).resolve()
    if target == base or not target.is_relative_to(base):
        raise ValueError(f"{text!r} resolves outside {base}")
    return target
