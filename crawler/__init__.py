"""An async web crawler and scraper: crawl sites, embed a fetcher, check health."""

from typing import TYPE_CHECKING, Any

from crawler.engines import Engine, EngineOptions, create_engine
from crawler.engines.mock import MockEngine
from crawler.errors import (
    BlockedAddress,
    BodyTooLarge,
    ConfigError,
    ConnectError,
    CrawlerError,
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
from crawler.fetcher import Fetcher, Result
from crawler.guard import AddressGuard
from crawler.middleware import FollowRedirects, Middleware, RateLimit, Retry, Timeout
from crawler.models import Request, Response, Timeouts
from crawler.sync import SyncFetcher

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
    "BlockedAddress",
    "BodyTooLarge",
    "ConfigError",
    "ConnectError",
    "Crawler",
    "CrawlerError",
    "Engine",
    "EngineOptions",
    "FetchError",
    "FetchTimeout",
    "Fetcher",
    "FollowRedirects",
    "FrontierError",
    "HTTPStatusError",
    "InvalidURL",
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
