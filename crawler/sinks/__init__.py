"""The crawl's output: item files that resume at a committed offset, page files, WARC files.

```
Sink (protocol)     open · write(record) · commit() -> offset · aclose
└── JsonlSink       one JSON object per line
render_csv          a JSONL file as a CSV, every key a column; written whole, atomically
PagesSink           write_page(url, body) -> path under root, atomic and idempotent
WarcWriter          open · write_response(WarcFetch) -> WarcRef · write_revisit(fetch, ref)
                    · commit() -> WarcPosition(file_index, length) · aclose
                    into crawl-00000.warc.gz, crawl-00001.warc.gz, ... (crawl-<worker>-00000...)
warc_files          a writer's files, in order (for --fresh); split_warc_name("crawl.warc.gz")
```
"""

from __future__ import annotations

from crawler.sinks._csv import csv_partial, render_csv
from crawler.sinks._jsonl import JsonlSink, to_json
from crawler.sinks._pages import PagesSink
from crawler.sinks._paths import safe_relative_path
from crawler.sinks._warc import WarcPosition, WarcWriter, split_warc_name, warc_files
from crawler.sinks._warc_records import WarcFetch, WarcRef, payload_digest
from crawler.sinks.base import Sink

__all__ = [
    "JsonlSink",
    "PagesSink",
    "Sink",
    "WarcFetch",
    "WarcPosition",
    "WarcRef",
    "WarcWriter",
    "csv_partial",
    "payload_digest",
    "render_csv",
    "safe_relative_path",
    "split_warc_name",
    "to_json",
    "warc_files",
]
