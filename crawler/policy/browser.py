"""The ``[browser]`` table (``FetchPolicy.browser``): each key's check and sentence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from crawler.engines.browser import RESOURCE_TYPES, WAIT_UNTIL, BrowserOptions
from crawler.errors import ConfigError
from crawler.policy import checks
from crawler.policy.checks import Check

__all__ = ["BROWSER_KEYS", "browser_options"]

BROWSER_KEYS: dict[str, tuple[Check, str]] = {
    "executable": (checks.string, 'the Chromium to start, a path or a name on PATH; `""`: '
                   "`chromium` on PATH (Debian's package)"),
    "pages": (checks.integer(1), "pages rendering at once; each costs a renderer's memory"),
    "wait_until": (checks.one_of(*WAIT_UNTIL), "when a page counts as rendered: `load`, "
                   "`domcontentloaded`, or `networkidle` (no request for 0.5 s; what content "
                   "fetched by script needs)"),
    "wait_for": (checks.string, "a CSS selector the page must contain before it counts as "
                 'rendered; `""`: none'),
    "block": (checks.list_of(checks.one_of(*RESOURCE_TYPES), "resource types"),
              "resource types never loaded: " + ", ".join(RESOURCE_TYPES)),
    "restart_every": (checks.integer(1), "pages before the browser is started afresh, so "
                      "its memory stays flat"),
    "shell_text": (checks.integer(0), '`render = "auto"`: a page with fewer visible '
                   "characters than this may be a shell ..."),
    "shell_scripts": (checks.integer(0), "... and is one when it loads a script, has an "
                      "empty mount point, or this many characters of inline script"),
    "mounts": (checks.list_of(checks.string, "element ids"), "ids of the elements apps "
               "mount into; empty, they mark a shell"),
}  # fmt: skip


def browser_options(key: str, value: Any) -> BrowserOptions:
    """A ``BrowserOptions``, or a mapping of its keys (the ``[browser]`` table)."""
    if isinstance(value, BrowserOptions):
        value = {f.name: getattr(value, f.name) for f in fields(value)}
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, "a [browser] table (or BrowserOptions)")
    values = {}
    for name, raw in value.items():
        if name not in BROWSER_KEYS:
            raise ConfigError(
                f"{key}.{name}", raw, "a key of [browser]: " + ", ".join(BROWSER_KEYS)
            )
        values[name] = BROWSER_KEYS[name][0](f"{key}.{name}", raw)
    if values.get("wait_for"):
        _css(f"{key}.wait_for", values["wait_for"])
    return BrowserOptions(**values)


def _css(key: str, value: str) -> None:
    from cssselect import GenericTranslator, SelectorError

    try:
        GenericTranslator().css_to_xpath(value)
    except SelectorError as exc:
        raise ConfigError(
            key, value, "a CSS selector", problem=f"not a CSS selector: {exc}"
        ) from None
