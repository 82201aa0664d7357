"""Settings files: the crawl config (TOML) as frozen values with named defaults.

``load_config(path)`` reads and validates every key; a bad value raises
``ConfigError`` naming the dotted key, the value and what was expected.
"""

from crawler.config.crawl import (
    SCHEMA,
    Config,
    CrawlSettings,
    OutputSettings,
    RecrawlSettings,
    StateSettings,
    load_config,
    parse_config,
)
from crawler.config.toml import ca_file, read_toml

__all__ = [
    "SCHEMA",
    "Config",
    "CrawlSettings",
    "OutputSettings",
    "RecrawlSettings",
    "StateSettings",
    "ca_file",
    "load_config",
    "parse_config",
    "read_toml",
]
