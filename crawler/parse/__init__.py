"""What a site parser sees and returns: ``Page`` in, ``Item`` and ``Link`` out."""

from crawler.parse.links import Link
from crawler.parse.loader import bundled_sites, load_site
from crawler.parse.site import ExtractFailure, Item, Page, Site

__all__ = ["ExtractFailure", "Item", "Link", "Page", "Site", "bundled_sites", "load_site"]
