"""The fetch policy: every fetch setting defined, defaulted, validated and documented once.

``FetchPolicy`` holds them; ``FETCHER``, ``CRAWL`` and ``HEALTH`` are the defaults of
an embedding app, a crawl and a health check; ``checks`` are the validators every
settings file shares.
"""

from crawler.policy.checks import parse_rate
from crawler.policy.fetch import (
    CRAWL,
    DEFAULT_RETRY_STATUSES,
    DEFAULT_USER_AGENT,
    FETCHER,
    HEALTH,
    FetchPolicy,
    Setting,
    settings,
    toml_sections,
)

__all__ = [
    "CRAWL",
    "DEFAULT_RETRY_STATUSES",
    "DEFAULT_USER_AGENT",
    "FETCHER",
    "HEALTH",
    "FetchPolicy",
    "Setting",
    "parse_rate",
    "settings",
    "toml_sections",
]
