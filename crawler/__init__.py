"""An async web crawler and scraper: crawl sites, embed a fetcher, check health."""

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
    HTTPStatusError,
    InvalidURL,
    ProtocolError,
    RequestDropped,
    RetryLater,
    TooManyRedirects,
)
from crawler.fetcher import Fetcher, Result
from crawler.middleware import FollowRedirects, Middleware, RateLimit, Retry, Timeout
from crawler.models import Request, Response, Timeouts
from crawler.sync import SyncFetcher

__version__ = "0.1.0"

__all__ = [
    "BlockedAddress",
    "BodyTooLarge",
    "ConfigError",
    "ConnectError",
    "CrawlerError",
    "Engine",
    "EngineOptions",
    "FetchError",
    "FetchTimeout",
    "Fetcher",
    "FollowRedirects",
    "HTTPStatusError",
    "InvalidURL",
    "Middleware",
    "MockEngine",
    "ProtocolError",
    "RateLimit",
    "Request",
    "RequestDropped",
    "Response",
    "Result",
    "Retry",
    "RetryLater",
    "SyncFetcher",
    "Timeout",
    "Timeouts",
    "TooManyRedirects",
    "create_engine",
]
