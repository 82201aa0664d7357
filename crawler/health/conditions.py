"""A target's conditions, checked on the final response. Each failure says what
was expected and what was seen, so a red check explains itself."""

from __future__ import annotations

import json
from typing import Any

import regex as bounded_re

from crawler.health.result import Failure
from crawler.health.targets import Target
from crawler.models import Response

__all__ = ["evaluate", "json_path"]

SHOWN = 120  # characters of a seen value kept in a report
REGEX_SECONDS = 1.0  # a pattern from a config file may backtrack for ever: give up then
_MISSING = object()


def evaluate(target: Target, response: Response, latency: float) -> list[Failure]:
    """Every condition of ``target`` that ``response`` fails, in config order.
    (The certificate is checked apart, as it needs its own connection.) Bodies run
    to megabytes: call it off the event loop."""
    failures: list[Failure] = []
    if not target.status.accepts(response.status):
        failures.append(Failure("status", str(target.status), str(response.status)))
    if target.max_latency_ms is not None and latency * 1000 > target.max_latency_ms:
        limit = f"at most {target.max_latency_ms:g} ms"
        failures.append(Failure("max_latency_ms", limit, f"{latency * 1000:.0f} ms"))
    if target.body_contains or target.body_regex is not None:
        text = response.text
        size = f"{len(response.body):,} bytes"
        for needle in target.body_contains:
            if needle not in text:
                wanted, missing = f"{needle!r} in the body", f"not found in {size}"
                failures.append(Failure("body_contains", wanted, missing, phrase=True))
        if target.body_regex is not None:
            failure = _regex_failure(target.body_regex, text, size)
            if failure is not None:
                failures.append(failure)
    for name, expected in target.headers:
        values = response.headers.getall(name, [])
        condition, wanted = f"header.{_quote(name)}", f"to contain {expected!r}"
        if not values:
            absent = "the response has no such header"
            failures.append(Failure(condition, wanted, absent, phrase=True))
            continue
        seen = ", ".join(values)  # a repeated header is one list
        if expected.lower() not in seen.lower():
            failures.append(Failure(condition, wanted, _clip(repr(seen))))
    if target.json:
        failures += _json_failures(target, response)
    return failures


def json_path(document: Any, path: str) -> Any:
    """The value at a dotted path (``db.connected``, ``items.0.id``), or ``_MISSING``."""
    value = document
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _regex_failure(pattern: bounded_re.Pattern[str], text: str, size: str) -> Failure | None:
    expected = f"a match for {_literal(pattern.pattern)} in the body"
    try:
        found = pattern.search(text, timeout=REGEX_SECONDS, concurrent=True)
    except TimeoutError:
        gave_up = f"gave up after {REGEX_SECONDS:g} s of searching {size}"
        return Failure("body_regex", expected, gave_up, phrase=True)
    return None if found else Failure("body_regex", expected, f"found none in {size}", phrase=True)


def _literal(pattern: str) -> str:
    """A pattern as the TOML file spells it (``'v\\d+'``), without repr's doubled backslashes."""
    return f"'{pattern}'" if "'" not in pattern and pattern.isprintable() else repr(pattern)


def _json_failures(target: Target, response: Response) -> list[Failure]:
    try:
        document = response.json()
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past Python's limit
        return [Failure("json", "a JSON body", f"invalid JSON ({exc})")]
    failures = []
    for path, expected in target.json:
        seen = json_path(document, path)
        condition = f"json.{_quote(path)}"
        if seen is _MISSING:
            failures.append(Failure(condition, _dump(expected), "found nothing there", phrase=True))
        elif not _same(seen, expected):
            failures.append(Failure(condition, _dump(expected), _dump(seen)))
    return failures


def _same(seen: Any, expected: Any) -> bool:
    """Equal and of the same kind: ``true`` is not ``1``, though ``1`` is ``1.0``."""
    if isinstance(seen, bool) or isinstance(expected, bool):
        return isinstance(seen, bool) and isinstance(expected, bool) and seen == expected
    return bool(seen == expected)


def _dump(value: Any) -> str:
    return _clip(json.dumps(value, ensure_ascii=False))


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


def _quote(name: str) -> str:
    return json.dumps(name) if "." in name else name
