"""Exit codes of every ``crawl`` command, in one place, and the error that means "usage"."""

from __future__ import annotations

import sys

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "UsageError", "usage"]

EXIT_OK = 0  # done: the crawl finished, every check passed
EXIT_FAILED = 1  # a fatal error, a failed check, the crawl's folder or worker id in use
EXIT_USAGE = 2  # bad arguments or a bad config file (the message names the key)
EXIT_INTERRUPTED = 130  # stopped by a signal; run the same command to resume


class UsageError(Exception):
    """Arguments that cannot work together; exits ``EXIT_USAGE`` with this message."""


def usage(exc: UsageError) -> int:
    print(f"crawl: {exc}", file=sys.stderr)
    return EXIT_USAGE
