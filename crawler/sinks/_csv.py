"""CSV: a header row, then one row per record in the header's columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crawler.errors import SinkError
from crawler.sinks._jsonl import json_default, to_json
from crawler.sinks.base import BufferedFileSink

__all__ = ["CsvSink"]

_HEADER_MAX = 1 << 20  # a header longer than this is not a header
_CHUNK = 64 * 1024


def _cell(value: Any) -> Any:
    """Scalars as ``csv`` writes them; containers as JSON; the rest like JSONL does."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, Mapping | list | tuple):
        return to_json(value)
    converted = json_default(value)
    return converted if isinstance(converted, str | int | float) else to_json(converted)


def _row(cells: Sequence[Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue().encode("utf-8")


def _first_record_end(data: bytes) -> int:
    """Index just past the first row's line break, ignoring breaks inside quotes;
    -1 when ``data`` holds no complete row yet."""
    quoted = False
    for index, byte in enumerate(data):
        if byte == 0x22:  # '"'; an escaped "" toggles twice, so parity is enough
            quoted = not quoted
        elif byte == 0x0A and not quoted:
            return index + 1
    return -1


class CsvSink(BufferedFileSink):
    """Items as CSV (RFC 4180, UTF-8, CRLF).

    The header comes from ``fields`` or else from the first record's keys and is
    written only into an empty file. Resuming a non-empty file reads the header back
    from its first row, so later rows keep the columns the file already has. Keys
    outside the header are dropped, missing ones are empty, dicts and lists are JSON.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        resume_at: int = 0,
        fields: Sequence[str] | None = None,
    ) -> None:
        super().__init__(path, resume_at=resume_at)
        if fields is not None and not fields:
            raise ValueError("fields must name at least one column")
        self.fields = tuple(fields) if fields is not None else None
        self.header: tuple[str, ...] | None = None

    async def _opened(self, size: int) -> None:
        if size == 0:
            self.header = self.fields
            if self.header is not None:
                self._buffer(_row(self.header))
            return
        header = await self._read_header(size)
        if self.fields is not None and header != self.fields:
            raise SinkError(
                f"{self.path} has columns {list(header)}, not the configured {list(self.fields)}",
                path=self.path,
            )
        self.header = header

    async def _read_header(self, size: int) -> tuple[str, ...]:
        data = b""
        while (end := _first_record_end(data)) < 0:
            if len(data) >= min(size, _HEADER_MAX):
                raise SinkError(f"{self.path} has no complete header row", path=self.path)
            chunk = await self._read(min(_CHUNK, size - len(data)), len(data))
            if not chunk:
                raise SinkError(f"{self.path} has no complete header row", path=self.path)
            data += chunk
        try:
            text = data[:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SinkError(f"{self.path}: the header is not UTF-8", path=self.path) from exc
        return tuple(next(csv.reader(io.StringIO(text))))

    def _encode(self, record: Mapping[str, Any]) -> bytes:
        if self.header is not None:
            return _row([_cell(record.get(name)) for name in self.header])
        header = tuple(str(key) for key in record)
        if not header:
            raise ValueError("the first CSV record must have at least one key")
        row = _row([_cell(value) for value in record.values()])
        self.header = header  # only once the row encoded: a failed record leaves no trace
        return _row(header) + row
