"""The types an extraction rule's field may have, and how text becomes each.

A value that cannot be read as its type raises ``Unreadable`` naming the text
and the type: the rule reports it as an ``extract`` error, never a crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dateutil import parser as dates

if TYPE_CHECKING:
    from crawler.parse.rules import Field
    from crawler.parse.site import Page

__all__ = ["CONVERTERS", "TYPES", "Unreadable", "read_number"]

_DEFAULTS = (datetime(2001, 1, 1), datetime(2002, 2, 2))  # naive: dateutil fills gaps from these

# The first number in the text: a sign, digits grouped by "," "." "'" or a (thin,
# non-breaking) space before exactly three digits, an exponent. "4.5 out of 5" is 4.5.
_NUMBER = re.compile(
    r"[-+\u2212]?\d(?:[\d.,'\u2019]|[ \u00a0\u202f](?=\d{3}(?!\d)))*(?:[eE][-+]?\d+)?"
)
_GROUPING = re.compile(r"[ \u00a0\u202f'\u2019]")
_FALSE = frozenset({"0", "false", "no", "off", "n"})


class Unreadable(ValueError):
    def __init__(self, value: Any, type: str) -> None:
        super().__init__(f"cannot read {_show(value)} as {type}")


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def read_number(value: Any, decimal: str = ".") -> float:
    """The first number in the text: ``$1,299.00``, ``4.5 out of 5``, or with
    ``decimal=","`` ``1.299,00 €``. Groups of other than three digits after a thousands
    mark (``1,5`` when the decimal mark is ``.``) are a misread, not a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise Unreadable(value, "a number")
    match = _NUMBER.search(value)
    if match is None:
        raise Unreadable(value, "a number")
    text = _GROUPING.sub("", match.group()).replace("\u2212", "-").rstrip(".,")
    thousands = "," if decimal == "." else "."
    whole, _, _ = text.partition(decimal)
    if any(len(group) != 3 for group in whole.split(thousands)[1:]):
        raise Unreadable(value, f"a number with {decimal!r} as its decimal mark")
    try:
        return float(text.replace(thousands, "").replace(decimal, "."))
    except ValueError:
        raise Unreadable(value, "a number") from None


def _string(value: Any, field: Field, page: Page) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():  # an XPath count() is a float
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)


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
    """Something found is true (an empty badge too), unless it says no."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in _FALSE


def _url(value: Any, field: Field, page: Page) -> str:
    if isinstance(value, dict):  # a JSON-LD ImageObject, a WebPage: its url or @id
        value = value.get("url") or value.get("@id") or value
    url = page.urljoin(value) if isinstance(value, str) else None
    if url is None:
        raise Unreadable(value, "an http(s) URL")
    return url


def _date(value: Any, field: Field, page: Page) -> str:
    """ISO 8601: a date alone stays a date; a time with a zone is given in UTC."""
    text = str(value).strip()
    try:  # twice, with defaults apart in every part: a part the text lacks shows
        when = dates.parse(text, default=_DEFAULTS[0], dayfirst=field.dayfirst)
        again = dates.parse(text, default=_DEFAULTS[1], dayfirst=field.dayfirst)
    except (ValueError, OverflowError):
        raise Unreadable(value, "a date") from None
    if when.date() != again.date():
        raise Unreadable(value, "a date with day, month and year")
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
