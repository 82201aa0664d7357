"""Policy as middleware: ``(request, call_next) -> response``, composed in list order."""

from crawler.middleware.cache import HttpCache
from crawler.middleware.chain import (
    Handler,
    Middleware,
    compose,
    http_cache,
    policy_chain,
    rate_limit,
)
from crawler.middleware.concurrency import Concurrency
from crawler.middleware.ratelimit import RateLimit
from crawler.middleware.redirects import FollowRedirects
from crawler.middleware.retry import Retry
from crawler.middleware.robots import Robots
from crawler.middleware.timeout import Timeout

__all__ = [
    "Concurrency",
    "FollowRedirects",
    "Handler",
    "HttpCache",
    "Middleware",
    "RateLimit",
    "Retry",
    "Robots",
    "Timeout",
    "compose",
    "http_cache",
    "policy_chain",
    "rate_limit",
]
