"""The ``crawl`` command. Heavy modules are imported inside each command, so
``crawl --help`` stays fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f'expected "Name: value", got {text!r}')
    return name.strip(), value.strip()


def _add_fetch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        default="aiohttp",
        choices=["aiohttp", "threads", "futures"],
        help="fetch engine (default: aiohttp)",
    )
    parser.add_argument(
        "--timeout", type=_positive_float, default=30.0, help="seconds per attempt (default: 30)"
    )
    parser.add_argument(
        "--retries", type=_non_negative_int, default=0, help="retries after the first attempt"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crawl", description="Crawl websites, fetch pages, check site health."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fetch = commands.add_parser(
        "fetch",
        help="fetch one URL and print status, headers and body (like curl -i)",
        description="Fetch one URL and print the status line, headers and body.",
    )
    fetch.add_argument("url")
    _add_fetch_options(fetch)
    fetch.add_argument(
        "-H",
        "--header",
        action="append",
        type=_header,
        default=[],
        metavar='"NAME: VALUE"',
        help="extra request header (repeatable)",
    )
    fetch.add_argument("-I", "--head", action="store_true", help="send HEAD instead of GET")
    fetch.add_argument(
        "--no-follow", action="store_true", help="print a redirect instead of following it"
    )
    fetch.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")

    run = commands.add_parser(
        "run", help="crawl the sites a TOML config describes (also: crawl CONFIG)",
        description="Crawl the sites CONFIG describes; a rerun resumes where the last stopped.",
    )  # fmt: skip
    run.add_argument("config", help="the crawl's TOML file")
    run.add_argument("--engine", choices=["aiohttp", "threads", "futures"], help="fetch engine")
    run.add_argument("--max-pages", type=_non_negative_int, help="stop after this many pages")
    run.add_argument("--output", metavar="DIR", help="output folder (overrides output.dir)")
    run.add_argument(
        "--fresh",
        action="store_true",
        help="discard the saved state and outputs of the folder and start over",
    )
    run.add_argument("--quiet", action="store_true", help="no progress and no summary")
    return parser


def _fetch(args: argparse.Namespace) -> int:
    from crawler.errors import FetchError
    from crawler.sync import SyncFetcher

    with SyncFetcher(
        args.engine,
        timeout=args.timeout,
        retries=args.retries,
        follow_redirects=not args.no_follow,
        verify_tls=not args.insecure,
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


def _run(args: argparse.Namespace) -> int:
    from crawler.run import run_crawl

    return run_crawl(
        args.config, engine=args.engine, max_pages=args.max_pages, output=args.output,
        fresh=args.fresh, quiet=args.quiet,
    )  # fmt: skip


_COMMANDS = {"fetch": _fetch, "run": _run}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in _COMMANDS:
        argv.insert(0, "run")  # `crawl config.toml` is `crawl run config.toml`
    args = build_parser().parse_args(argv)
    from crawler.errors import ConfigError

    try:
        return _COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"crawl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
