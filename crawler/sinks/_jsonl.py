"""JSON Lines: one compact UTF-8 JSON object per line."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Set
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any
from uuid import UUID

from crawler.sinks.base import BufferedFileSink

__all__ = ["JsonlSink", "json_default", "to_json"]


def json_default(value: Any) -> Any:
    """What the values a parser commonly yields become in JSON.

    Dates and times become ISO 8601 strings; bytes become text when they are valid
    UTF-8 and base64 otherwise; sets become sorted lists (by ``repr`` if the items
    do not sort); paths, UUIDs and decimals become strings (a float would lose
    digits); enums their value; dataclasses dicts. Anything else is a ``TypeError``:
    writing ``str(obj)`` would silently store junk.
    """
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii")
    if isinstance(value, Set):
        try:
            return sorted(value)
        except TypeError:
            return sorted(value, key=repr)
    if isinstance(value, PurePath | UUID | Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON: {value!r:.80}")


def to_json(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is (the file is UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=json_default)


class JsonlSink(BufferedFileSink):
    """Items as JSON Lines. Strings never contain a raw newline (JSON escapes it),
    so a line is always exactly one record and a torn tail is one partial line."""

    def _encode(self, record: Mapping[str, Any]) -> bytes:
        return (to_json(dict(record)) + "\n").encode("utf-8")
