"""What a site parser sees and returns: ``Page`` in, ``Item`` and ``Link`` out."""

from crawler.parse.links import Link
from crawler.parse.site import Item, Page, Site, load_site

__all__ = ["Item", "Link", "Page", "Site", "load_site"]
