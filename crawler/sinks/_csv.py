"""CSV: a JSON Lines file written out whole, every key of every record a column.

A CSV has one header for all its rows, but the records of a crawl bring their own
keys, and the keys of records yet to come are unknown. So items are appended as
JSON Lines (which resume at a committed offset) and the CSV is rendered from them
when a run ends: one pass collects the columns, a second writes the rows, so
memory holds the columns, never the rows. The CSV is written beside its target
and moved into place with ``os.replace``: a reader, or a run killed halfway
through rendering, finds the previous CSV or the new one, never half of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from crawler.errors import SinkError
from crawler.sinks._jsonl import to_json
from crawler.sinks.base import IO_ERRORS, fsync_directory, sink_error

__all__ = ["csv_partial", "render_csv"]


def csv_partial(target: Path) -> Path:
    """Where ``render_csv`` writes ``target`` before moving it into place; a render
    cut short leaves it behind, and the next render of ``target`` overwrites it."""
    return target.with_name(f".{target.name}.partial")


async def render_csv(
    records: Path | str, target: Path | str, *, columns: Sequence[str] = ()
) -> int | None:
    """Write the JSON Lines file ``records`` as the CSV ``target`` (RFC 4180, UTF-8,
    CRLF), in a thread; returns the number of rows, or None when ``records`` does not
    exist (nothing to render: ``target`` is left as it is).

    The columns are ``columns``, in that order, then every other key of the records
    in the order first seen, so no field is ever left out; a record lacking a key
    has an empty cell there. Objects and arrays are written as JSON. No records
    make a file holding the header of ``columns`` alone, or nothing without them.
    """
    return await asyncio.to_thread(_render, Path(records), Path(target), tuple(columns))


def _cell(value: Any) -> Any:
    """A JSON value as a cell: scalars as ``csv`` writes them, objects and arrays as JSON."""
    return to_json(value) if isinstance(value, dict | list) else value


def _records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON Lines file, read one line at a time."""
    try:
        with path.open("rb") as lines:  # binary: only b"\n" ends a line
            for number, line in enumerate(lines, 1):
                yield _record(path, number, line)
    except SinkError:
        raise
    except OSError as exc:
        raise sink_error(exc, path, "cannot read") from exc


def _record(path: Path, number: int, line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:  # not JSON, or not UTF-8
        raise SinkError(f"{path}, line {number}: not JSON ({exc})", path=path) from exc
    if not isinstance(record, dict):
        raise SinkError(f"{path}, line {number}: not a JSON object", path=path)
    return record


def _render(records: Path, target: Path, first: tuple[str, ...]) -> int | None:
    if not records.exists():
        return None
    columns = dict.fromkeys(first)  # an ordered set: first seen, first column
    for record in _records(records):
        columns.update(dict.fromkeys(record))
    partial = csv_partial(target)
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            if columns:
                writer.writerow(columns)
            rows = 0
            for record in _records(records):
                writer.writerow([_cell(record.get(name)) for name in columns])
                rows += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
        fsync_directory(target.parent)  # the rename itself survives a power cut
    except BaseException as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        if isinstance(exc, IO_ERRORS) and not isinstance(exc, SinkError):
            raise sink_error(exc, target, "cannot write") from exc
        raise
    return rows
