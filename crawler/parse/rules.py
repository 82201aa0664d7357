"""Extraction rules: fields taken from pages with selectors a config file names.

A ``Rule`` says on which pages (``match``, a regex searched in the URL), from
which elements (``each``, or the whole page) and which ``fields`` to take; a
``Field`` says where a value is (CSS or XPath through parsel, a dotted path into
the page's JSON-LD, a ``<meta>``), how to narrow it (``attr``, ``regex``, ``all``)
and what it is (``type``). Rules hold only strings, so they pickle into parse
processes; parsel caches what it compiles there.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from parsel import Selector

from crawler.parse.convert import CONVERTERS, Unreadable
from crawler.parse.links import Link
from crawler.parse.site import ExtractFailure, Item, Page, Site

__all__ = [
    "RESERVED",
    "SOURCES",
    "Field",
    "Rule",
    "RuleResult",
    "RuleSite",
    "apply_rule",
]

SOURCES = ("css", "xpath", "jsonld", "meta")
RESERVED = frozenset({"url", "type", "round", "change", "rendered"})  # keys the crawl adds
_JSONLD = "//script[@type='application/ld+json']/text()"
_META = "//meta[@name=$key or @property=$key]/@content"


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    source: str  # one of SOURCES
    query: str
    attr: str | None = None
    all: bool = False
    regex: str | None = None
    default: Any = None  # None: a field that finds nothing is left out
    type: str = "string"  # one of convert.CONVERTERS
    decimal: str = "."  # for numbers: "," reads 1.299,00
    dayfirst: bool = False  # for dates: 03/12/2026 is the 3rd of December


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    fields: tuple[Field, ...]
    match: str | None = None
    each: str | None = None
    required: tuple[str, ...] = ()
    follow: tuple[str, ...] | None = None  # None: every link

    def matches(self, url: str) -> bool:
        return self.match is None or _regex(self.match).search(url) is not None


@dataclass(slots=True)
class RuleResult:
    items: list[Item]
    missing: list[str]  # fields that found nothing (no default), in the rule's order
    failures: list[str]  # why some element or the page gave no item


class RuleSite(Site):
    """The rules as a site: each matching rule's items, the links ``follow`` picks (on
    pages no rule with ``follow`` matches: every link, or ``base``'s links), and
    ``base``'s items too if given."""

    name = "rules"

    def __init__(self, rules: Iterable[Rule], base: Site | None = None) -> None:
        self.rules = tuple(rules)
        self.base = base

    def parse(self, page: Page) -> Iterator[Item | Link | ExtractFailure]:
        links: list[Link] | None = None
        if self.base is not None:
            links = []
            for found in self.base.parse(page):
                if isinstance(found, Link):
                    links.append(found)
                else:
                    yield found
        follow: list[str] | None = None
        for rule in self.rules:
            if not rule.matches(page.url):
                continue
            result = apply_rule(rule, page)
            yield from result.items
            yield from (ExtractFailure(f"{rule.name}: {failure}") for failure in result.failures)
            if rule.follow is not None:
                follow = [*(follow or []), *rule.follow]
        if follow is not None:
            yield from _picked_links(page, follow)
        else:
            yield from page.links() if links is None else links


def apply_rule(rule: Rule, page: Page) -> RuleResult:
    result = RuleResult([], [], [])
    scopes: list[Selector] = [page.selector]
    if rule.each is not None:
        scopes = list(page.css(rule.each))
        if not scopes:
            result.failures.append(f'no element matches each = "{rule.each}"')
    missing: dict[str, None] = {}
    for number, scope in enumerate(scopes):
        item = Item(url=page.url, type=rule.name)
        problems = []
        for field in rule.fields:
            try:
                value = _value(field, scope, page)
            except Unreadable as exc:
                problems.append(f"field {field.name}: {exc}")
                continue
            if value is not None:
                item[field.name] = value
            else:
                missing[field.name] = None
        lacking = [name for name in rule.required if name not in item]
        if lacking:
            problems.append("required " + ", ".join(lacking) + " found nothing")
        where = f"element {number} of each" if rule.each is not None else "the page"
        if problems:
            result.failures.append(f"{where}: " + "; ".join(problems))
        else:
            result.items.append(item)
    result.missing = list(missing)
    return result


def _value(field: Field, scope: Selector, page: Page) -> Any:
    """The field's value, typed; None when it found nothing and has no default."""
    # An element with no text found nothing, unless finding it is the point (a bool).
    found = [text for text in _found(field, scope)
             if text is not None and (text != "" or field.type == "bool")]  # fmt: skip
    if field.regex is not None:
        found = [m for m in (_narrow(field.regex, text) for text in found) if m is not None]
    if not found:
        if field.default is not None:
            return field.default
        return False if field.type == "bool" else None
    convert = CONVERTERS[field.type]
    values = [convert(text, field, page) for text in found]
    return values if field.all else values[0]


def _found(field: Field, scope: Selector) -> list[Any]:
    if field.source == "jsonld":
        return _jsonld(scope, field.query, every=field.all)
    if field.source == "meta":
        selected = scope.xpath(_META, key=field.query)
    else:
        selected = scope.css(field.query) if field.source == "css" else scope.xpath(field.query)
    picked = selected if field.all else selected[:1]
    return [_text(node, field) for node in picked]


def _text(node: Selector, field: Field) -> str | float | None:
    """An element as the field reads it: its markup, an attribute, or all its text."""
    root = node.root
    if isinstance(root, str):  # ::text, ::attr(), @attr or text() already picked
        return " ".join(root.split()) if field.type != "html" else root
    if isinstance(root, bool | int | float):  # an XPath boolean() or count()
        return root
    if field.type == "html":
        markup: str = node.get()
        return markup
    if field.attr is not None:
        value = node.attrib.get(field.attr)
        return value.strip() if value is not None else None
    return " ".join((node.xpath("string()").get() or "").split())


def _jsonld(scope: Selector, path: str, *, every: bool) -> list[Any]:
    """The values at a dotted path in the page's JSON-LD objects (those of a list or an
    ``@graph`` included); a block that is not JSON is passed over."""
    values = []
    for text in scope.xpath(_JSONLD).getall():
        try:
            document = json.loads(text)
        except ValueError:
            continue
        for thing in _things(document):
            value = _at(thing, path.split("."))
            # A list is its values ("image": ["a.jpg", "b.jpg"]); an object stays whole,
            # for the type to read (a url takes its "url" or "@id", json keeps it).
            values += [v for v in (value if isinstance(value, list) else [value]) if v is not None]
            if values and not every:
                return values[:1]
    return values


def _things(document: Any) -> Iterator[Any]:
    if isinstance(document, list):
        for part in document:
            yield from _things(part)
    elif isinstance(document, dict):
        yield document
        graph = document.get("@graph")
        if isinstance(graph, list):
            yield from _things(graph)


def _at(value: Any, steps: list[str]) -> Any:
    for step in steps:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def _narrow(pattern: str, value: Any) -> str | None:
    match = _regex(pattern).search(value if isinstance(value, str) else str(value))
    if match is None:
        return None
    group: str | None = match.group(1) if match.re.groups else None
    found: str = match.group(0) if group is None else group  # an optional group may not take part
    return found


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _picked_links(page: Page, selectors: list[str]) -> Iterator[Link]:
    for query in selectors:
        for node in page.css(query):
            href = node.root if isinstance(node.root, str) else node.attrib.get("href")
            url = page.urljoin(href)
            if url is not None:
                yield Link(url)
