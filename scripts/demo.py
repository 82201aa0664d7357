"""The demo: serve the demo shop on 127.0.0.1, crawl it with config/demo.toml, show
what came out. ``scripts/demo`` installs the crawler, then runs this.

The shop listens on a socket this process binds before the crawl starts, and the
crawl's config names that socket's port, so the crawl can reach no other server.
The port: ``--port N`` (or ``PORT=N``) exactly, else exit 1 when it is taken;
otherwise ``DEMO_PREFERRED_PORT`` (default 8000), or any free port when that one
is taken. The exit code is the crawl's.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import demo_site  # beside this file

from crawler.cli import main as crawl
from crawler.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED
from crawler.config import load_config

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "demo.toml"
CONFIG_ORIGIN = "http://127.0.0.1:8000"  # where config/demo.toml's start_urls point
PREFERRED_PORT = 8000
SHOWN_ITEMS = 3


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (0-65535), got {text!r}")
    return int(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/demo",
        description="Serve the demo shop on 127.0.0.1, crawl it, show the first items.",
    )
    parser.add_argument(
        "--port", type=_port, help="serve on exactly this port, else fail (default: $PORT, "
        f"else $DEMO_PREFERRED_PORT or {PREFERRED_PORT}, else any free port)",
    )  # fmt: skip
    parser.add_argument("--output", metavar="DIR", type=Path, help="output folder (default: "
                        "config/demo.toml's output.dir, under the repository)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.port is None and os.environ.get("PORT"):
        args.port = _env_port(parser, "PORT")
    args.preferred = _env_port(parser, "DEMO_PREFERRED_PORT") or PREFERRED_PORT
    return args


def _env_port(parser: argparse.ArgumentParser, name: str) -> int | None:
    text = os.environ.get(name, "")
    if not text:
        return None
    try:
        return _port(text)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"{name}: {exc}")


def listen(args: argparse.Namespace) -> socket.socket:
    """Our socket: on ``--port`` exactly, else on the preferred port or any free one."""
    if args.port is not None:
        return demo_site.bind(args.port)  # PortTaken says so
    try:
        return demo_site.bind(args.preferred)
    except demo_site.PortTaken:
        sock = demo_site.bind(0)
        print(f"Port {args.preferred} is taken; using {demo_site.port_of(sock)} instead.")
        return sock


def write_config(folder: Path, port: int) -> Path:
    """config/demo.toml with its start URLs on ``port``, as ``demo.toml`` in ``folder``
    (the file's name is the crawl's state name, so it stays "demo")."""
    origin = f"http://127.0.0.1:{port}"
    path = folder / "demo.toml"
    path.write_text(CONFIG.read_text(encoding="utf-8").replace(CONFIG_ORIGIN, origin))
    for url in load_config(path).crawl.start_urls:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != origin:
            raise SystemExit(f"demo: {CONFIG} starts at {url}, not at {CONFIG_ORIGIN}/")
    return path


def show_items(path: Path) -> None:
    with path.open(encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    print(f"\n{len(records)} items in {_shown(path)}; the first {SHOWN_ITEMS}:")
    for record in records[:SHOWN_ITEMS]:
        print(f"  {record.get('name')}  {record.get('sku')}  {record.get('price')}")
    print(f"Stats: {_shown(path.parent / 'stats.json')}")


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sock = listen(args)
    except demo_site.PortTaken as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"demo: cannot listen on 127.0.0.1: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    port = demo_site.port_of(sock)
    with tempfile.TemporaryDirectory(prefix="crawler-demo-") as folder, demo_site.serving(sock):
        config_path = write_config(Path(folder), port)
        config = load_config(config_path)
        output = args.output or ROOT / config.output.dir
        print(f"Demo shop on http://127.0.0.1:{port}/; crawling it into {_shown(output)}")
        sys.stdout.flush()
        code = crawl([str(config_path), "--fresh", "--output", _shown(output)])
    items = output / config.output.items
    if code == 0 and items.exists():
        show_items(items)
    return code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
