"""The crawl: a run leases requests from the frontier, fetches them through the
policy chain, parses pages off the event loop and commits what they produced.

``crawler.py``  the public front: ``Crawler(config).run()``
``run.py``      one run: leasing, the fetch tasks, stopping
``handler.py``  one leased request to its outcome
``parser.py``   parsing off the event loop, in threads or processes
``committer.py`` the commit protocol: files first, then one frontier transaction
``budget.py``   max_pages and max_pages_per_host, across runs and workers
``checkpoint.py`` every checkpoint key
``files.py``    the output files, per worker; ``lock.py``: one crawl per folder
``cluster.py``  politeness shared by the workers of a crawl (Redis)
"""

from crawler.crawl.crawler import Crawler, configured_site, open_state
from crawler.crawl.stats import CrawlStats

__all__ = ["CrawlStats", "Crawler", "configured_site", "open_state"]
