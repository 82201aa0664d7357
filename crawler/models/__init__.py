"""The vocabulary every layer shares: requests, responses, timeouts, and the
lifecycle of every resource (``async with``, ``aclose()``)."""

from crawler.models.chain import Handler, Middleware
from crawler.models.deadline import attempt_deadline, outside_deadline
from crawler.models.request import (
    DEFAULT_MAX_BYTES,
    Headers,
    HeadersLike,
    Kind,
    Lineage,
    Request,
    Timeouts,
    make_headers,
)
from crawler.models.resources import AsyncResource, Resource
from crawler.models.response import Response

__all__ = [
    "DEFAULT_MAX_BYTES",
    "AsyncResource",
    "Handler",
    "Headers",
    "HeadersLike",
    "Kind",
    "Lineage",
    "Middleware",
    "Request",
    "Resource",
    "Response",
    "Timeouts",
    "attempt_deadline",
    "make_headers",
    "outside_deadline",
]
