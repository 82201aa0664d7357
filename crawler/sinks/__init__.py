"""The crawl's output: item files that resume at a committed offset, and page files.

```
Sink (protocol)     open · write(record) · commit() -> offset · aclose
└── JsonlSink       one JSON object per line
render_csv          a JSONL file as a CSV, every key a column; written whole, atomically
PagesSink           write_page(url, body) -> path under root, atomic and idempotent
```
"""

from __future__ import annotations

from crawler.sinks._csv import csv_partial, render_csv
from crawler.sinks._jsonl import JsonlSink, to_json
from crawler.sinks._pages import PagesSink
from crawler.sinks._paths import safe_relative_path
from crawler.sinks.base import Sink

__all__ = [
    "JsonlSink",
    "PagesSink",
    "Sink",
    "csv_partial",
    "render_csv",
    "safe_relative_path",
    "to_json",
]
