"""The crawl's output: item files that resume at a committed offset, and page files.

```
Sink (protocol)     open · write(record) · commit() -> offset · aclose
├── JsonlSink       one JSON object per line
└── CsvSink         a header, then rows in its columns
PagesSink           write_page(url, body) -> path under root, atomic and idempotent
```
"""

from __future__ import annotations

from pathlib import Path

from crawler.sinks._csv import CsvSink
from crawler.sinks._jsonl import JsonlSink, to_json
from crawler.sinks._pages import PagesSink
from crawler.sinks._paths import safe_relative_path
from crawler.sinks.base import Sink

__all__ = [
    "CsvSink",
    "JsonlSink",
    "PagesSink",
    "Sink",
    "open_items_sink",
    "safe_relative_path",
    "to_json",
]

_BY_SUFFIX: dict[str, type[JsonlSink] | type[CsvSink]] = {".jsonl": JsonlSink, ".csv": CsvSink}


def open_items_sink(path: Path | str, *, resume_at: int = 0) -> Sink:
    """The sink for ``path``'s suffix, not yet opened (use ``async with``)."""
    path = Path(path)
    kind = _BY_SUFFIX.get(path.suffix.lower())
    if kind is None:
        expected = " or ".join(sorted(_BY_SUFFIX))
        raise ValueError(f"items file {path} must end in {expected}, not {path.suffix!r}")
    return kind(path, resume_at=resume_at)
