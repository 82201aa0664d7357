"""``[[extract]]`` tables: extraction rules read, checked and compiled when the config loads.

Every mistake is a ``ConfigError`` naming its key, ``extract[0].fields.price.css``,
before any page is fetched: an unknown key, a bad selector or regex, a type that
does not exist, a field named like a key the crawl adds itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import lxml.etree
from parsel.csstranslator import css2xpath

from crawler.errors import ConfigError
from crawler.parse.convert import TYPES
from crawler.parse.rules import RESERVED, SOURCES, Field, Rule
from crawler.policy.checks import boolean, list_of, string

__all__ = ["parse_rules"]

_RULE_KEYS = ("name", "match", "each", "required", "follow", "fields")
_FIELD_KEYS = (*SOURCES, "attr", "all", "regex", "default", "type", "decimal", "dayfirst")


def parse_rules(value: Any) -> tuple[Rule, ...]:
    if not isinstance(value, list) or not all(isinstance(rule, Mapping) for rule in value):
        raise ConfigError("extract", value, "[[extract]] tables")
    rules = tuple(_rule(f"extract[{index}]", table) for index, table in enumerate(value))
    names = [rule.name for rule in rules]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"extract[{index}].name", name, "a name no other rule has")
    return rules


def _rule(key: str, table: Mapping[str, Any]) -> Rule:
    _known(key, table, _RULE_KEYS)
    name = _text(f"{key}.name", table.get("name"), "a name for the rule's items (their type)")
    fields = table.get("fields")
    if not isinstance(fields, Mapping) or not fields:
        raise ConfigError(f"{key}.fields", fields, "an [extract.fields] table of fields")
    compiled = tuple(_field(f"{key}.fields.{field}", field, spec)
                     for field, spec in fields.items())  # fmt: skip
    required = list_of(string, "field names")(f"{key}.required", table.get("required", []))
    for index, field in enumerate(required):
        if field not in fields:
            raise ConfigError(f"{key}.required[{index}]", field, "a field of the rule")
    match = _optional(key, table, "match", _regex)
    each = _optional(key, table, "each", _css)
    follow = table.get("follow")
    if follow is not None:
        follow = list_of(string, "CSS selectors")(f"{key}.follow", follow)
        for index, query in enumerate(follow):
            _css(f"{key}.follow[{index}]", query)
    return Rule(name, compiled, match, each, tuple(required),
                tuple(follow) if follow is not None else None)  # fmt: skip


def _field(key: str, name: str, spec: Any) -> Field:
    if name in RESERVED:
        raise ConfigError(key, spec, "a field name the crawl does not add itself (not "
                          + ", ".join(sorted(RESERVED)) + ")")  # fmt: skip
    if isinstance(spec, str):
        spec = {"css": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(key, spec, 'a CSS selector, or a table like { css = "h1" }')
    _known(key, spec, _FIELD_KEYS)
    sources = [source for source in SOURCES if source in spec]
    if len(sources) != 1:
        raise ConfigError(key, dict(spec), "exactly one of " + ", ".join(SOURCES))
    source = sources[0]
    query = _text(f"{key}.{source}", spec[source], "a non-empty string")
    {"css": _css, "xpath": _xpath}.get(source, lambda k, q: q)(f"{key}.{source}", query)
    kind = spec.get("type", "string")
    if kind not in TYPES:
        raise ConfigError(f"{key}.type", kind, "one of " + ", ".join(TYPES))
    decimal = spec.get("decimal", ".")
    if decimal not in (".", ","):
        raise ConfigError(f"{key}.decimal", decimal, '"." or ","')
    regex = _optional(key, spec, "regex", _regex)
    attr = _optional(key, spec, "attr", lambda k, v: _text(k, v, "an attribute name"))
    every = boolean(f"{key}.all", spec.get("all", False))
    dayfirst = boolean(f"{key}.dayfirst", spec.get("dayfirst", False))
    return Field(name, source, query, attr, every, regex, spec.get("default"), kind, decimal,
                 dayfirst)  # fmt: skip


def _optional(
    key: str, table: Mapping[str, Any], name: str, check: Callable[[str, Any], str]
) -> str | None:
    value = table.get(name)
    return None if value is None else check(f"{key}.{name}", value)


def _known(key: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for name in table:
        if name not in allowed:
            raise ConfigError(f"{key}.{name}", table[name], "a key of " + ", ".join(allowed))


def _text(key: str, value: Any, expected: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, value, expected)
    return value


def _css(key: str, query: Any) -> str:
    _text(key, query, "a CSS selector")
    try:
        css2xpath(query)
    except Exception as exc:  # cssselect's SelectorError and ExpressionError alike
        problem = f"invalid CSS selector {json.dumps(query)}: {exc}"
        raise ConfigError(key, query, "a CSS selector", problem=problem) from None
    return str(query)


def _xpath(key: str, query: str) -> str:
    try:
        lxml.etree.XPath(query)
    except lxml.etree.XPathError as exc:
        problem = f"invalid XPath {json.dumps(query)}: {exc}"
        raise ConfigError(key, query, "an XPath expression", problem=problem) from None
    return query


def _regex(key: str, pattern: Any) -> str:
    _text(key, pattern, "a regular expression")
    try:
        re.compile(pattern)
    except re.error as exc:
        problem = f"invalid regular expression {json.dumps(pattern)}: {exc}"
        raise ConfigError(key, pattern, "a regular expression", problem=problem) from None
    return str(pattern)
