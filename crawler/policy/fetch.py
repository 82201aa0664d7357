"""The fetch policy: how every fetch behaves, each setting defined once.

A setting is one field of ``FetchPolicy``: its name (the ``Fetcher`` keyword),
its type, its default, the check that validates it, where it sits in a TOML
file and the sentence that documents it. The ``Fetcher``, ``SyncFetcher``, the
crawl config, the health checks and the command line all build this one frozen
type, so a value means the same everywhere and is refused the same way, with a
``ConfigError`` naming the key as the user wrote it (``timeout`` as a keyword,
``fetch.timeout`` in a TOML file).

Where a crawl and a health check want other defaults than an embedding app,
they start from a named profile of the same definition: ``FETCHER`` (the
field defaults), ``CRAWL`` and ``HEALTH``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import Any

from crawler.engines import ENGINES, Engine, EngineOptions, create_engine
from crawler.engines.browser import RENDER_MODES, BrowserEngine, BrowserOptions
from crawler.engines.guard import AddressGuard, address_guard
from crawler.errors import ConfigError
from crawler.models import DEFAULT_MAX_BYTES, HeadersLike, Middleware, Timeouts
from crawler.policy import checks
from crawler.policy.browser import BROWSER_KEYS, browser_options
from crawler.policy.checks import Check

__all__ = [
    "CRAWL",
    "DEFAULT_RETRY_STATUSES",
    "DEFAULT_USER_AGENT",
    "FETCHER",
    "HEALTH",
    "FetchPolicy",
    "Setting",
    "settings",
    "toml_sections",
]

DEFAULT_USER_AGENT = "crawler/0.1 (+https://example.org/bot)"
DEFAULT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Setting:
    """One fetch setting as the user meets it."""

    name: str  # the keyword, and the field of FetchPolicy
    toml: str | None  # its dotted key in a crawl config; None: keyword only
    doc: str
    check: Check
    # A setting that is a whole table (``[browser]``): its keys, their checks and docs.
    keys: Mapping[str, tuple[Check, str]] | None = None


def _setting(
    default: Any,
    check: Check,
    doc: str,
    toml: str | None = None,
    keys: Mapping[str, tuple[Check, str]] | None = None,
) -> Any:
    metadata = {"check": check, "doc": doc, "toml": toml, "keys": keys}
    return field(default=default, metadata=metadata)


def _engine(key: str, value: Any) -> str | Engine:
    if isinstance(value, str) and value in ENGINES:
        return value
    if not isinstance(value, str) and isinstance(value, Engine):
        return value
    raise ConfigError(key, value, "one of " + ", ".join(sorted(ENGINES)))


def _middleware(key: str, value: Any) -> tuple[Middleware, ...]:
    items = tuple(value) if isinstance(value, Iterable) else None
    if items is None or not all(callable(item) for item in items):
        raise ConfigError(key, value, "a list of middleware: (request, call_next) -> response")
    return items


def _addresses(key: str, value: Any) -> tuple[str, ...]:
    return tuple(checks.list_of(checks.string, "addresses or networks")(key, value))


def _cache(key: str, value: Any) -> str | None:
    """None, or a path as a string (a ``Path`` and its string are the same policy);
    whether the file is usable is known when the Fetcher opens it."""
    if value is None:
        return None
    path = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(path, str) or not path:
        raise ConfigError(key, value, "the path of an SQLite file, or None")
    return path


_statuses = checks.list_of(checks.status, "HTTP status codes")


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Every setting of a fetch, validated at construction.

    Values are kept in their normal form (a timeout as ``Timeouts``, a rate in
    requests per second, headers as pairs), so two policies that mean the same
    compare equal and a policy can key a cache of fetchers.
    """

    engine: str | Engine = _setting(
        "aiohttp", _engine,
        '"aiohttp", "threads", "futures", "browser" (every HTML page rendered in headless '
        "Chromium), or an Engine instance", "fetch.engine",
    )  # fmt: skip
    _: KW_ONLY
    concurrency: int = _setting(64, checks.integer(1), "requests in flight in all",
                                "fetch.concurrency")  # fmt: skip
    per_host_concurrency: int = _setting(
        8, checks.integer(1), "requests in flight to one `host:port`", "fetch.per_host_concurrency"
    )
    timeout: float | Timeouts = _setting(
        Timeouts(total=30.0), checks.timeout,
        "seconds per attempt (total, body included), or `Timeouts(connect=, read=, total=)`",
        "fetch.timeout",
    )  # fmt: skip
    retries: int = _setting(0, checks.integer(0), "retries after the first attempt",
                            "retry.retries")  # fmt: skip
    backoff: float = _setting(0.5, checks.duration, "first retry wait (seconds)", "retry.backoff")
    max_backoff: float = _setting(30.0, checks.duration, "the cap on any wait (seconds)",
                                  "retry.max_backoff")  # fmt: skip
    retry_statuses: Collection[int] = _setting(
        DEFAULT_RETRY_STATUSES, lambda key, value: frozenset(_statuses(key, value)),
        "statuses that are retried", "retry.statuses",
    )  # fmt: skip
    rate_limit: str | float | None = _setting(
        None, checks.rate_or_auto,
        'per host: `"10/s"`, `"30/m"`, `"100/h"` or a number per second; `"auto"`: learned '
        "from each host's answers; `None`: unlimited",
        "rate_limit.per_host",
    )  # fmt: skip
    rate_limit_start: str | float = _setting(
        2.0, checks.positive_rate, 'where `"auto"` starts a host', "rate_limit.start"
    )
    rate_limit_max: str | float = _setting(
        20.0, checks.positive_rate, 'the most `"auto"` lets a host reach',
        "rate_limit.max_per_host",
    )  # fmt: skip
    rate_limit_hosts: Mapping[str, str | float | None] | Iterable[tuple[str, Any]] = _setting(
        (), checks.host_rates,
        'per host name, a rate or `"auto"` instead of `rate_limit`, e.g. '
        '`{"example.org": "2/s"}`', "rate_limit.hosts",
    )  # fmt: skip
    user_agent: str = _setting(DEFAULT_USER_AGENT, checks.string, "the `User-Agent` header",
                               "fetch.user_agent")  # fmt: skip
    headers: HeadersLike | None = _setting(
        (), checks.headers, "headers sent with every request (a request's own headers win)",
        "fetch.headers",
    )  # fmt: skip
    cookies: HeadersLike | None = _setting(
        (),
        checks.headers,
        "cookies sent with every request; cookies the servers set are kept per domain",
    )
    proxy: str | None = _setting(None, checks.proxy, "an `http://` proxy for every request",
                                 "fetch.proxy")  # fmt: skip
    verify_tls: bool | str = _setting(
        True, checks.verify_tls,
        "`False` accepts any certificate; a path trusts the CAs of that PEM file instead",
        "fetch.verify_tls",
    )  # fmt: skip
    block_private: bool = _setting(
        False, checks.boolean,
        "refuse loopback, private, link-local, multicast and reserved addresses",
        "fetch.block_private",
    )  # fmt: skip
    allow_private: Iterable[str] = _setting(
        (), _addresses, "with `block_private`: addresses, `address:port` or networks still "
        'reachable, e.g. `["127.0.0.1:8099", "10.1.2.0/24"]`', "fetch.allow_private",
    )  # fmt: skip
    max_bytes: int = _setting(
        DEFAULT_MAX_BYTES, checks.integer(1),
        "largest body accepted, counted after decompression", "fetch.max_bytes",
    )  # fmt: skip
    body_memory: int | None = _setting(
        None, checks.optional_size,
        "bytes that bodies past 256 KiB may hold at once, until their responses are "
        "garbage; `None` or 0: no limit", "fetch.body_memory",
    )  # fmt: skip
    max_redirects: int = _setting(10, checks.integer(0), "redirect hops before `TooManyRedirects`",
                                  "fetch.max_redirects")  # fmt: skip
    follow_redirects: bool = _setting(
        True, checks.boolean, "`False` returns 3xx responses as they are"
    )
    middleware: Sequence[Middleware] = _setting(
        (), _middleware, "your own middleware, run inside redirects and outside retries"
    )
    cache: str | os.PathLike[str] | None = _setting(
        None, _cache, "an SQLite file that keeps validators and bodies: GETs are revalidated "
        "with conditional requests and a 304 gives the stored response (`from_cache`)",
    )  # fmt: skip

    render: str = _setting(
        "never", checks.one_of(*RENDER_MODES),
        'with an HTTP engine, pages rendered in headless Chromium: `"never"`, `"always"` '
        '(every HTML page) or `"auto"` (pages that look like a script-built shell)',
        "fetch.render",
    )  # fmt: skip
    browser: BrowserOptions = _setting(
        BrowserOptions(), browser_options,
        "the headless browser: a `BrowserOptions` or a mapping of the `[browser]` keys",
        "browser", keys=BROWSER_KEYS,
    )  # fmt: skip

    def __post_init__(self) -> None:
        for setting in settings():
            value = setting.check(setting.name, getattr(self, setting.name))
            object.__setattr__(self, setting.name, value)
        address_guard(self.block_private, self.allow_private, proxy=self.proxy)
        if self.block_private and not isinstance(self.engine, str):
            raise ConfigError(
                "block_private", True, "an engine name (a ready engine has its own guard)"
            )
        if float(self.rate_limit_start) > float(self.rate_limit_max):  # both checked: numbers
            raise ConfigError("rate_limit_start", self.rate_limit_start,
                              f"at most rate_limit_max ({self.rate_limit_max:g}/s)")  # fmt: skip
        if self.render != "never" and not isinstance(self.engine, str):
            raise ConfigError("render", self.render, '"never" with a ready engine (an engine '
                              "name renders through its own engines)")  # fmt: skip

    # the values in their normal form -----------------------------------------------------

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts.of(self.timeout)

    @property
    def rate(self) -> float | None:
        """Requests per second per host; None: unlimited, or learned (``auto``)."""
        return None if self.rate_limit == "auto" else checks.parse_rate(self.rate_limit)

    @property
    def request_headers(self) -> list[tuple[str, str]]:
        """The headers every request carries: ``User-Agent``, then ``headers``."""
        return [("User-Agent", self.user_agent), *checks.headers("headers", self.headers)]

    @property
    def renders(self) -> bool:
        """Whether pages may be rendered in the browser (``engine="browser"`` or ``render``)."""
        return self.engine == "browser" or self.render != "never"

    @property
    def guard(self) -> AddressGuard | None:
        return address_guard(self.block_private, self.allow_private, proxy=self.proxy)

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments that make this policy again (a Fetcher's, say)."""
        return {setting.name: getattr(self, setting.name) for setting in _SETTINGS}

    def replace(self, **changes: Any) -> FetchPolicy:
        """A policy with ``changes``, validated like a new one."""
        return dataclasses.replace(self, **changes)

    def create_engine(self) -> Engine:
        """The engine this policy names (not yet open), or the ready one it holds."""
        if not isinstance(self.engine, str):
            return self.engine
        options = EngineOptions(
            concurrency=self.concurrency, verify_tls=self.verify_tls, proxy=self.proxy,
            cookies=dict(checks.headers("cookies", self.cookies)), guard=self.guard,
            body_memory=self.body_memory, max_bytes=self.max_bytes,
        )  # fmt: skip
        if not self.renders:
            return create_engine(self.engine, options)
        browser = self.engine == "browser"
        return BrowserEngine(
            options, browser=self.browser, http="aiohttp" if browser else self.engine,
            render="always" if self.render == "never" else self.render,
            per_host_concurrency=self.per_host_concurrency,
        )  # fmt: skip

    # reading a TOML file -----------------------------------------------------------------

    def from_toml(self, tables: Mapping[str, Any]) -> FetchPolicy:
        """This policy with the settings of a crawl config's ``[fetch]``, ``[retry]`` and
        ``[rate_limit]`` tables; unknown keys and bad values are ``ConfigError``s
        naming the dotted key."""
        changes: dict[str, Any] = {}
        for section, whole in _TABLES.items():  # a whole table is one setting: [browser]
            if (table := tables.get(section)) is not None:
                changes[whole.name] = whole.check(section, table)
        for section, keys in toml_sections().items():
            table = tables.get(section)
            if table is None or section in _TABLES:
                continue
            if not isinstance(table, Mapping):
                raise ConfigError(section, table, f"a [{section}] table")
            for name, raw in table.items():
                setting = keys.get(name)
                if setting is None:
                    raise ConfigError(f"{section}.{name}", raw,
                                      f"a key of [{section}]: " + ", ".join(keys))  # fmt: skip
                changes[setting.name] = setting.check(f"{section}.{name}", raw)
        try:
            return self.replace(**changes)
        except ConfigError as exc:  # a rule between settings: name them as the file does
            name, cut, rest = exc.key.partition("[")
            toml = _BY_NAME[name].toml if name in _BY_NAME else None
            if toml is None:
                raise
            raise ConfigError(toml + cut + rest, exc.value, exc.expected) from None


def settings() -> list[Setting]:
    """Every fetch setting, in the order of ``FetchPolicy``'s fields."""
    return _SETTINGS


def toml_sections() -> dict[str, dict[str, Setting]]:
    """The settings a crawl config holds, by section and key: ``{"fetch": {"timeout": ...}}``."""
    return _SECTIONS


_SETTINGS = [
    Setting(f.name, f.metadata["toml"], f.metadata["doc"], f.metadata["check"], f.metadata["keys"])
    for f in fields(FetchPolicy)
]
_BY_NAME = {setting.name: setting for setting in _SETTINGS}


def _sections(every: list[Setting]) -> dict[str, dict[str, Setting]]:
    sections: dict[str, dict[str, Setting]] = {}
    for setting in every:
        if setting.toml is not None:
            section, dot, key = setting.toml.partition(".")
            if dot:
                sections.setdefault(section, {})[key] = setting
            else:  # a whole table: its keys
                sections[section] = {
                    key: Setting(setting.name, f"{section}.{key}", doc, check)
                    for key, (check, doc) in (setting.keys or {}).items()
                }
    return sections


_SECTIONS = _sections(_SETTINGS)
_TABLES = {s.toml: s for s in _SETTINGS if s.toml is not None and "." not in s.toml}

FETCHER = FetchPolicy()
"""An embedding app's defaults: the Fetcher's."""

CRAWL = FetchPolicy(
    timeout=15.0, retries=2, rate_limit="4/s", body_memory=48_000_000, follow_redirects=False
)
"""A crawl's defaults: shorter timeouts, retries, a polite rate, bounded body memory.
A crawl never follows a redirect inside a request: the target goes back to the
frontier like a link, so scope, dedup and robots.txt apply to it."""

HEALTH = FetchPolicy(timeout=10.0)
"""A health check's defaults: ``crawl ping`` and ``crawl check``."""
