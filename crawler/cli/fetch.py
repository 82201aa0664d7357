"""``crawl fetch URL``: one URL, printed like ``curl -i``."""

from __future__ import annotations

import argparse
import sys

from crawler.cli.exits import EXIT_FAILED, EXIT_OK
from crawler.errors import FetchError
from crawler.fetcher import SyncFetcher

__all__ = ["fetch"]


def fetch(args: argparse.Namespace) -> int:
    with SyncFetcher(
        args.engine,
        timeout=args.timeout,
        retries=args.retries,
        follow_redirects=not args.no_follow,
        verify_tls=not args.insecure,
        block_private=args.block_private,
    ) as fetcher:
        try:
            call = fetcher.head if args.head else fetcher.get
            response = call(args.url, headers=args.header)
        except FetchError as exc:
            print(f"crawl: {args.url}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    out = sys.stdout.buffer
    lines = [f"HTTP/1.1 {response.status} {response.reason}".rstrip()]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    out.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
    out.write(response.body)
    out.flush()
    return EXIT_OK
