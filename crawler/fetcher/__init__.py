"""The embeddable fetcher: ``Fetcher`` for async code, ``SyncFetcher`` for the rest."""

from crawler.fetcher.client import Fetcher, Result
from crawler.fetcher.sync import SyncFetcher

__all__ = ["Fetcher", "Result", "SyncFetcher"]
