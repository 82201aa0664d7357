"""The types an extraction rule's field may have, and how text becomes each.

A value that cannot be read as its type raises ``Unreadable`` naming the text
and the type: the rule reports it as an ``extract`` error, never a crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

from dateutil import parser as dates

if TYPE_CHECKING:
    from crawler.parse.rules import Field
    from crawler.parse.site import Page

__all__ = ["CONVERTERS", "TYPES", "Unreadable", "read_number"]

_NOT_NUMBER = re.compile(r"[^\d.,+\-eE]")  # currency signs, spaces, letters
_FALSE = frozenset({"", "0", "false", "no", "off", "n"})


class Unreadable(ValueError):
    def __init__(self, value: Any, type: str) -> None:
        super().__init__(f"cannot read {_show(value)} as {type}")


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def read_number(value: Any, decimal: str = ".") -> float:
    """``1,299.00``, ``$ 1,299``, or with ``decimal=","`` ``1.299,00 €``, as a float."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = _NOT_NUMBER.sub("", str(value))
    thousands = "," if decimal == "." else "."
    text = text.replace(thousands, "").replace(decimal, ".")
    try:
        return float(text)
    except ValueError:
        raise Unreadable(value, "a number") from None


def _string(value: Any, field: Field, page: Page) -> Any:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _number(value: Any, field: Field, page: Page) -> float:
    return read_number(value, field.decimal)


def _int(value: Any, field: Field, page: Page) -> int:
    try:
        number = read_number(value, field.decimal)
    except Unreadable:
        raise Unreadable(value, "an integer") from None
    if not number.is_integer():
        raise Unreadable(value, "an integer")
    return int(number)


def _bool(value: Any, field: Field, page: Page) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in _FALSE


def _url(value: Any, field: Field, page: Page) -> str:
    url = page.urljoin(str(value))
    if url is None:
        raise Unreadable(value, "an http(s) URL")
    return url


def _date(value: Any, field: Field, page: Page) -> str:
    """ISO 8601: a date alone stays a date; a time with a zone is given in UTC."""
    text = str(value).strip()
    try:
        when = dates.parse(text)
    except (ValueError, OverflowError):
        raise Unreadable(value, "a date") from None
    if re.fullmatch(r"[^:]*", text) and when.time() == when.min.time():
        return when.date().isoformat()
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.isoformat()


def _json(value: Any, field: Field, page: Page) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise Unreadable(value, "JSON") from None


def _html(value: Any, field: Field, page: Page) -> Any:
    return value


CONVERTERS: dict[str, Callable[[Any, Field, Page], Any]] = {
    "string": _string,
    "int": _int,
    "number": _number,
    "bool": _bool,
    "url": _url,
    "date": _date,
    "html": _html,
    "json": _json,
}
TYPES = tuple(CONVERTERS)
