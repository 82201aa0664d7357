"""A crawl config as the command line changes it (``--engine``, ``--max-pages``,
``--output``), and the address ``--serve`` takes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from crawler.cli.exits import UsageError
from crawler.config import Config, load_config

__all__ = ["configure", "serve_address"]


def configure(
    path: str, *, engine: str | None = None, max_pages: int | None = None,
    output: str | None = None,
) -> Config:  # fmt: skip
    """The config file with the command line's overrides."""
    config = load_config(path)
    if engine:
        config = config.replace(fetch=config.fetch.replace(engine=engine))
    if max_pages is not None:
        config = config.replace(crawl=dataclasses.replace(config.crawl, max_pages=max_pages))
    if output:
        config = config.replace(output=dataclasses.replace(config.output, dir=Path(output)))
    return config


def serve_address(text: str) -> tuple[str, int]:
    """``--serve HOST:PORT`` (``[::1]:9108`` for IPv6); ``UsageError`` otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--serve expects HOST:PORT such as 127.0.0.1:9108, got {text!r}")
    return host, int(port)
