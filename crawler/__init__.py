"""An async web crawler and scraper: crawl sites, embed a fetcher, check health."""

from typing import TYPE_CHECKING, Any

from crawler.engines import Engine, EngineOptions, create_engine
from crawler.engines.browser import BrowserOptions
from crawler.engines.guard import AddressGuard
from crawler.engines.mock import MockEngine
from crawler.errors import (
    AlreadyRunning,
    BlockedAddress,
    BodyTooLarge,
    ConfigError,
    ConnectError,
    CrawlerError,
    ErrorRecord,
    FetchError,
    FetchTimeout,
    FrontierError,
    HTTPStatusError,
    InvalidURL,
    ParseError,
    ProtocolError,
    RequestDropped,
    RetryLater,
    SinkError,
    TooManyRedirects,
)
from crawler.fetcher import Fetcher, Result, SyncFetcher
from crawler.middleware import FollowRedirects, Middleware, RateLimit, Retry, Timeout
from crawler.models import Lineage, Request, Response, Timeouts
from crawler.policy import FetchPolicy

if TYPE_CHECKING:
    from crawler.crawl import Crawler

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``Crawler`` loads the parsing and file-writing stack: only when asked for."""
    if name == "Crawler":
        from crawler.crawl import Crawler

        return Crawler
    raise AttributeError(f"module 'crawler' has no attribute {name!r}")


__all__ = [
    "AddressGuard",
    "AlreadyRunning",
    "BlockedAddress",
    "BodyTooLarge",
    "BrowserOptions",
    "ConfigError",
    "ConnectError",
    "Crawler",
    "CrawlerError",
    "Engine",
    "EngineOptions",
    "ErrorRecord",
    "FetchError",
    "FetchPolicy",
    "FetchTimeout",
    "Fetcher",
    "FollowRedirects",
    "FrontierError",
    "HTTPStatusError",
    "InvalidURL",
    "Lineage",
    "Middleware",
    "MockEngine",
    "ParseError",
    "ProtocolError",
    "RateLimit",
    "Request",
    "RequestDropped",
    "Response",
    "Result",
    "Retry",
    "RetryLater",
    "SinkError",
    "SyncFetcher",
    "Timeout",
    "Timeouts",
    "TooManyRedirects",
    "create_engine",
]
