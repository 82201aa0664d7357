"""What ``[[alert]]`` and ``[[maintenance]]`` tables share: each checked for its keys,
and the target names they pick checked against the file's targets."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from crawler.errors import ConfigError
from crawler.policy.checks import list_of, string

__all__ = ["tables_of", "target_names"]


def tables_of(
    section: str, value: Any, keys: Collection[str]
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(key, table)`` for each ``[[section]]`` table, its keys among ``keys``."""
    if value is None:
        return
    if not isinstance(value, list):
        raise ConfigError(section, value, f"[[{section}]] tables")
    for index, table in enumerate(value):
        key = f"{section}[{index}]"
        if not isinstance(table, Mapping):
            raise ConfigError(key, table, f"a [[{section}]] table")
        for name, item in table.items():
            if name not in keys:
                raise ConfigError(f"{key}.{name}", item, f"a key of [[{section}]]: "
                                  + ", ".join(keys))  # fmt: skip
        yield key, table


def target_names(key: str, value: Any, known: Collection[str]) -> frozenset[str]:
    """Names of ``[[target]]`` tables of the file."""
    names = frozenset(list_of(string, "target names")(key, value))
    if unknown := sorted(names - set(known)):
        raise ConfigError(key, unknown[0], "the name of a [[target]]")
    return names
