"""A crawl config as the command line changes it: ``--engine``, ``--max-pages``, ``--output``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from crawler.config import Config, load_config

__all__ = ["configure"]


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
