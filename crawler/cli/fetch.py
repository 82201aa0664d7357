"""``crawl fetch URL``: one URL, printed like ``curl -i``."""

from __future__ import annotations

import argparse
import sys

from crawler.cli.args import with_default_scheme
from crawler.cli.exits import EXIT_FAILED, EXIT_OK, UsageError, usage
from crawler.engines.guard import ALLOW_HINT
from crawler.errors import FetchError
from crawler.fetcher import SyncFetcher

__all__ = ["fetch"]

# The guard names the setting that loosens it; here that setting is an option.
ALLOW_OPTION = "allow it with --allow-private ADDRESS, ADDRESS:PORT or NETWORK"


def fetch(args: argparse.Namespace) -> int:
    if args.allow_private and not args.block_private:
        return usage(UsageError("--allow-private needs --block-private"))
    url = with_default_scheme(args.url)  # like curl: 127.0.0.1:8081/x is http://
    with SyncFetcher(
        args.engine,
        timeout=args.timeout,
        retries=args.retries,
        follow_redirects=not args.no_follow,
        verify_tls=not args.insecure,
        block_private=args.block_private,
        allow_private=args.allow_private,
    ) as fetcher:
        try:
            call = fetcher.head if args.head else fetcher.get
            response = call(url, headers=args.header)
        except FetchError as exc:
            message = str(exc).replace(ALLOW_HINT, ALLOW_OPTION)
            print(f"crawl: {url}: {type(exc).__name__}: {message}", file=sys.stderr)
            return EXIT_FAILED
    out = sys.stdout.buffer
    lines = [f"HTTP/1.1 {response.status} {response.reason}".rstrip()]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    out.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
    out.write(response.body)
    out.flush()
    return EXIT_OK
