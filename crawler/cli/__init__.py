"""The ``crawl`` command: one module per subcommand, imported only to run it, so
``crawl --help`` stays fast. Exit codes are in ``exits``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from crawler.cli.args import build_parser
from crawler.cli.exits import EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["main"]

# command -> module:function, each taking the parsed arguments and returning the exit code
_COMMANDS = {
    "fetch": "crawler.cli.fetch:fetch",
    "run": "crawler.cli.run:run",
    "worker": "crawler.cli.run:worker",
    "status": "crawler.cli.status:status",
    "ping": "crawler.cli.ping:ping",
    "check": "crawler.cli.check:check",
    "extract": "crawler.cli.extract:extract",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in _COMMANDS:
        argv.insert(0, "run")  # `crawl config.toml` is `crawl run config.toml`
    args: argparse.Namespace = build_parser().parse_args(argv)
    # The library's warnings (a finished crawl rerun, a Redis reconnect) read as ours.
    logging.basicConfig(level=logging.WARNING, format="crawl: %(message)s", stream=sys.stderr)
    module, _, function = _COMMANDS[args.command].partition(":")
    command = getattr(importlib.import_module(module), function)
    from crawler.errors import ConfigError

    try:
        code: int = command(args)
        return code
    except ConfigError as exc:
        print(f"crawl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
