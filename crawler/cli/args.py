"""The command line's arguments: one parser, every command's options.

The commands' own modules are imported only to run them, so ``crawl --help``
stays fast."""

from __future__ import annotations

import argparse
import re

from crawler.engines import ENGINES
from crawler.engines.guard import ALLOW_FORMS, AddressGuard
from crawler.policy import FETCHER, HEALTH
from crawler.policy.checks import parse_duration

__all__ = ["build_parser", "with_default_scheme"]

# A scheme as RFC 3986 spells it, and what follows it when the "scheme" was a host
# and the rest its port: ``localhost:8080``, ``example.org:8080/x``.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_PORT = re.compile(r"[0-9]+(?:[/?#]|$)")


def with_default_scheme(url: str) -> str:
    """``url`` with ``http://`` in front when it names no scheme, as curl assumes:
    ``localhost``, ``127.0.0.1:8081/x``, ``example.org/x``, ``[::1]:8080``. A URL that
    starts with a scheme (``https://``, ``ftp://``, ``file:``, ``mailto:``) is left as
    written, so an unsupported one is refused by its name; so is text with spaces,
    which is no URL at all."""
    if not url or any(c.isspace() for c in url):
        return url
    if url.startswith("//"):
        return f"http:{url}"
    scheme = _SCHEME.match(url)
    if scheme is None or _PORT.match(url, scheme.end()):
        return f"http://{url}"
    return url


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


def _allowed_address(text: str) -> str:
    try:
        AddressGuard((text,))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {ALLOW_FORMS}, got {text!r}") from None
    return text


def _duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0:
        raise argparse.ArgumentTypeError(
            f'expected a duration such as "30d" or "12h", got {text!r}'
        )
    return seconds


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _add_fetch_options(
    parser: argparse.ArgumentParser,
    *,
    engine: str | None,
    timeout: float | None,
    retries: int | None,
) -> None:
    """``None`` defaults: the file's own setting."""
    parser.add_argument(
        "--engine",
        default=engine,
        choices=list(ENGINES),
        help="fetch engine (default: " + (engine or "the file's, else aiohttp") + ")",
    )
    default = "from the file" if timeout is None else f"{timeout:g}"
    parser.add_argument(
        "--timeout", type=_positive_float, default=timeout,
        help=f"seconds per attempt (default: {default})",
    )  # fmt: skip
    default = "from the file" if retries is None else str(retries)
    parser.add_argument(
        "--retries", type=_non_negative_int, default=retries,
        help=f"retries after the first attempt (default: {default})",
    )  # fmt: skip


def _add_crawl_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="the crawl's TOML file")
    parser.add_argument("--engine", choices=list(ENGINES), help="fetch engine")
    parser.add_argument("--max-pages", type=_non_negative_int, help="stop after this many pages")
    parser.add_argument("--output", metavar="DIR", help="output folder (overrides output.dir)")
    parser.add_argument("--quiet", action="store_true", help="no progress and no summary")
    parser.add_argument(
        "--serve", metavar="HOST:PORT",
        help="serve /metrics (Prometheus) and /status.json while the crawl runs, "
        "e.g. 127.0.0.1:9109",
    )  # fmt: skip


def _add_check_options(
    parser: argparse.ArgumentParser,
    *,
    engine: str | None,
    timeout: float | None,
    retries: int | None,
    concurrency: int | None,
) -> None:
    _add_fetch_options(parser, engine=engine, timeout=timeout, retries=retries)
    parser.add_argument(
        "--concurrency", type=_positive_int, default=concurrency,
        help=f"requests in flight at once (default: {concurrency or HEALTH.concurrency})",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crawl", description="Crawl websites, fetch pages, check site health."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_fetch, _add_ping, _add_check, _add_run, _add_worker, _add_status,
                _add_extract):  # fmt: skip
        add(commands)
    return parser


Commands = argparse._SubParsersAction  # the type argparse gives add_subparsers' result


def _add_extract(commands: Commands[argparse.ArgumentParser]) -> None:
    extract = commands.add_parser(
        "extract", help="try a config's [[extract]] rules on one page and print the items",
        description="Fetch URL with CONFIG's fetch settings (or read --html FILE), apply the "
        "[[extract]] rules that match it, print each item as JSON, then what found nothing.",
    )  # fmt: skip
    extract.add_argument("config", help="the crawl config with [[extract]] rules")
    extract.add_argument("url", help="the page's URL (also with --html: rules match on it)")
    extract.add_argument("--rule", metavar="NAME", help="only this rule")
    extract.add_argument("--html", metavar="FILE", help="a saved page instead of fetching URL")


def _add_fetch(commands: Commands[argparse.ArgumentParser]) -> None:
    fetch = commands.add_parser(
        "fetch",
        help="fetch one URL and print status, headers and body (like curl -i)",
        description="Fetch one URL and print the status line, headers and body.",
    )
    fetch.add_argument("url", help="the URL; without a scheme, http:// is assumed")
    _add_fetch_options(fetch, engine=str(FETCHER.engine), timeout=FETCHER.timeouts.total,
                       retries=FETCHER.retries)  # fmt: skip
    fetch.add_argument(
        "-H", "--header", action="append", type=_header, default=[], metavar='"NAME: VALUE"',
        help="extra request header (repeatable)",
    )  # fmt: skip
    fetch.add_argument("-I", "--head", action="store_true", help="send HEAD instead of GET")
    fetch.add_argument(
        "--no-follow", action="store_true", help="print a redirect instead of following it"
    )
    fetch.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    fetch.add_argument(
        "--block-private", action="store_true",
        help="refuse loopback, private, link-local and reserved addresses (after DNS, every hop)",
    )  # fmt: skip
    fetch.add_argument(
        "--allow-private", action="append", type=_allowed_address, default=[], metavar="ADDR",
        help="with --block-private: an address, address:port or network still reachable, "
        "e.g. 127.0.0.1:8099 or 10.1.2.0/24 (repeatable)",
    )  # fmt: skip


def _add_ping(commands: Commands[argparse.ArgumentParser]) -> None:
    ping = commands.add_parser(
        "ping", help="check that URLs answer, all at once, and print a table",
        description="Fetch every URL concurrently and report status, latency, size and the "
        "final URL. Exit 0 when all answer below 400, 1 when any does not, 2 on usage errors.",
    )  # fmt: skip
    ping.add_argument("urls", nargs="*", metavar="URL", help="URLs to check; - reads stdin")
    ping.add_argument(
        "--from", dest="from_files", action="append", default=[], metavar="FILE",
        help="read URLs from FILE, one per line (- for stdin; repeatable)",
    )  # fmt: skip
    ping.add_argument("--json", action="store_true", help="one JSON object per URL")
    _add_check_options(ping, engine=str(HEALTH.engine), timeout=HEALTH.timeouts.total,
                       retries=HEALTH.retries, concurrency=HEALTH.concurrency)  # fmt: skip


def _add_check(commands: Commands[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check", help="check targets against conditions (health.toml), or every link of a site",
        description="Check each [[target]] of a health-check file, once or with --watch; "
        "or, with --crawl, crawl a site and report every broken link.",
    )  # fmt: skip
    check.add_argument("file", nargs="?", help="the health-check TOML file")
    check.add_argument("--crawl", metavar="CONFIG", help="check every link a crawl of CONFIG finds")
    check.add_argument(
        "--format", choices=["table", "json", "junit", "prometheus"], default="table",
        help="output format (default: table)",
    )  # fmt: skip
    # None: the health file's or the crawl config's own setting
    _add_check_options(check, engine=None, timeout=None, retries=None, concurrency=None)
    check.add_argument(
        "--watch", type=_positive_float, metavar="SECONDS", help="check again every SECONDS"
    )
    check.add_argument(
        "--serve", metavar="HOST:PORT",
        help="with --watch: serve a status page and /metrics, e.g. 127.0.0.1:9108",
    )  # fmt: skip
    check.add_argument(
        "--test-alerts", action="store_true",
        help="send one test message through every [[alert]] of the file, then exit 0 or 1",
    )  # fmt: skip
    check.add_argument(
        "--history", type=_positive_int, default=120, metavar="N",
        help="with --watch: checks kept per target for uptime and percentiles (default: 120)",
    )  # fmt: skip
    check.add_argument(
        "--store", metavar="PATH",
        help="with --watch or --report: the history file (default: FILE's name with "
        ".sqlite3, beside it)",
    )  # fmt: skip
    check.add_argument(
        "--no-store", action="store_true",
        help="with --watch: keep no history file (a restart starts afresh)",
    )  # fmt: skip
    check.add_argument(
        "--retain", type=_duration, metavar="DURATION",
        help="with --watch: keep daily uptime this long (default: 400d)",
    )  # fmt: skip
    check.add_argument(
        "--report", type=_duration, metavar="PERIOD",
        help="print the SLA report of the last PERIOD (e.g. 30d) from the history file; "
        "--format json for JSON",
    )  # fmt: skip
    check.add_argument(
        "--output", metavar="DIR",
        help="with --crawl: keep the crawl's state in DIR, so a rerun resumes it",
    )  # fmt: skip


def _add_run(commands: Commands[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run", help="crawl the sites a TOML config describes (also: crawl CONFIG)",
        description="Crawl the sites CONFIG describes; a rerun resumes where the last stopped.",
    )  # fmt: skip
    _add_crawl_options(run)
    run.add_argument(
        "--fresh", action="store_true",
        help="discard the saved state and outputs of the folder and start over",
    )  # fmt: skip
    run.add_argument(
        "--recrawl", action="store_true",
        help="with [recrawl]: the next round fetches every page, due or not",
    )  # fmt: skip
    run.add_argument(
        "--workers", type=_positive_int, default=1,
        help="with a Redis frontier: start N worker processes on this machine",
    )  # fmt: skip


def _add_worker(commands: Commands[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker", help="join a crawl shared through Redis as one more worker",
        description="Join the crawl CONFIG describes ([state] frontier = \"redis://...\").",
    )  # fmt: skip
    _add_crawl_options(worker)
    worker.add_argument(
        "--id", dest="worker_id", metavar="NAME",
        help="this worker's name, unique in the crawl and the same on restart "
        "(default: HOSTNAME-PID); its files are items-NAME.jsonl and errors-NAME.jsonl",
    )  # fmt: skip


def _add_status(commands: Commands[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status", help="show a crawl's progress, shared by all its workers",
        description="Show the progress CONFIG's crawl has saved: its frontier and counts.",
    )  # fmt: skip
    status.add_argument("config", help="the crawl's TOML file")
    status.add_argument("--output", metavar="DIR", help="output folder (overrides output.dir)")
    status.add_argument("--json", action="store_true", help="one JSON object instead of text")
