"""Scrapy's side of ``compare.py``: a ``CrawlSpider`` doing what ``site = "shop"`` does.

    benchmarks/.cache/venv-scrapy/bin/python benchmarks/scrapy_spider.py \\
        --url http://127.0.0.1:PORT/ --feed items.jsonl [--stats stats.json] [--concurrency 64]

Runs in the harness's own virtualenv (Scrapy is not a dependency of the crawler).
Settings match the crawl it is compared with: robots.txt obeyed (Scrapy's default
parser, Protego, knows the ``*`` wildcards of ``Disallow: /*?*sessionid=``), C requests
in flight in all and per domain, a download delay of 1/2000 s without randomisation
(the crawl's ``[rate_limit] per_host = "2000/s"``), no AutoThrottle, items to a JSONL
feed.
``allowed_domains = ["127.0.0.1"]``: Scrapy matches it against the host name
without the port, so ``localhost:PORT`` and ``elsewhere.invalid`` stay off-site.
Scrapy's own request fingerprint drops fragments and sorts the query, so the three
spellings of a search page are one request, as in the crawler's frontier. The one
change from a stock spider: the start request goes through the dupe filter too,
else the home page is fetched twice.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule

DOWNLOAD_DELAY = 1 / 2000  # seconds between requests to a host: compare.py's RATE_LIMIT


class ShopSpider(CrawlSpider):
    """One item per page with a product block, every on-site link followed."""

    name = "shop"
    allowed_domains = ["127.0.0.1"]  # noqa: RUF012 (Scrapy's own class attribute)
    rules = (Rule(LinkExtractor(), callback="parse_item", follow=True),)

    def __init__(self, start_url: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_urls = [start_url]

    async def start(self) -> AsyncIterator[Request]:
        # Scrapy's default start request has dont_filter=True, which also keeps it out
        # of the dupe filter: every link back to "/" would fetch the home page again.
        for url in self.start_urls:
            yield Request(url)

    def parse_start_url(self, response: Response, **kwargs: Any) -> Iterator[dict[str, Any]]:
        # The home page has a product block too: the crawler's shop site yields it.
        yield from self.parse_item(response)

    def parse_item(self, response: Response) -> Iterator[dict[str, Any]]:
        for product in response.css(".product"):
            yield {
                "url": response.url,
                "name": product.css(".name::text").get(),
                "sku": product.css(".sku::text").get(),
                "price": product.css(".price::text").get(),
            }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the start URL")
    parser.add_argument("--feed", type=Path, required=True, help="items, as JSON lines")
    parser.add_argument("--stats", type=Path, help="Scrapy's stats at the end, as JSON")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    process = CrawlerProcess(
        {
            "BOT_NAME": "bench",
            "ROBOTSTXT_OBEY": True,
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
            "DOWNLOAD_DELAY": DOWNLOAD_DELAY,
            "RANDOMIZE_DOWNLOAD_DELAY": False,
            "AUTOTHROTTLE_ENABLED": False,
            "LOG_LEVEL": "INFO",
            "TELNETCONSOLE_ENABLED": False,
            "FEEDS": {str(args.feed): {"format": "jsonlines", "overwrite": True}},
        }
    )
    crawler = process.create_crawler(ShopSpider)
    result: dict[str, Any] = {}

    def closed(spider: Any, reason: str) -> None:
        result.update(crawler.stats.get_stats() if crawler.stats else {}, reason=reason)

    crawler.signals.connect(closed, signal=signals.spider_closed)
    process.crawl(crawler, start_url=args.url)
    process.start()
    if args.stats is not None:
        args.stats.write_text(json.dumps(result, indent=2, default=str) + "\n")
    errors = sum(v for k, v in result.items() if k.startswith("log_count/ERROR"))
    return 0 if result.get("reason") == "finished" and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
