"""A deterministic generated shop for benchmarks, served on 127.0.0.1.

    python benchmarks/site.py --pages 20000 [--port 0] [--stats FILE] [--seed 7]

prints ``listening on http://127.0.0.1:PORT`` once it accepts connections and
serves, until SIGTERM or SIGINT. Every page carries what a real shop's pages carry:
an inline ``<style>`` (4.5 KB), an inline ``<script>`` (4.8 KB) and the page's data
as JSON in another, OpenGraph tags, a canonical link, a header with account and
basket links and a mega-menu of the 30 categories, and a footer of the 12 info
pages, 3 off-site social links and a ``#top`` link. Every page has exactly one
product block (other pages than products a "Featured" one):

- ``/``: the home page, linking to ``/p/0.html`` and 12 bestsellers;
- ``/p/{i}.html`` for ``i < pages``: about 40 KB of HTML with one product block
  (``<div class="product">`` with ``name``, ``sku`` and ``price``, what
  ``sites/shop.py`` parses), a ``<script type="application/ld+json">`` Product, a long
  description, a specs table, 12 reviews and about 80 links: the 30 categories and
  12 info pages, a breadcrumb to its category ``/c/{i % 30}.html``, three same-page
  ``#tab`` links, ``/cart?add={i}``, 12 "customers also viewed" products, one product
  ``?sessionid=...`` link, and about 15 links in every form a crawler meets. Page
  ``i`` links to its children ``2i+1`` and ``2i+2``, so every page is reachable from
  ``/``; the other links are random pages written relative, root-relative, absolute
  and protocol-relative, many with a ``#fragment``;
- ``/c/{k}.html`` for ``k < 30``: a category, listing 48 of its products
  (``i % 30 == k``);
- ``/info/{name}.html``: 12 small pages (about, shipping, returns, ...);
- ``/search?q={i}&page=1&sort=price`` for ``i % 4 == 0``, linked from page ``i`` with
  its three parameters in three orders: one page, three spellings;
- links robots.txt disallows, which a crawl must never fetch: ``/cart`` and
  ``/account/`` (every page), ``/cart?add={i}`` and ``/p/{j}.html?sessionid=...``
  (every product page), ``/private/{i}.html`` (every 25th product page);
- off-site links to ``http://localhost:PORT/...`` (another host name) and to
  ``https://elsewhere.invalid/`` and ``https://social.invalid/...``: a crawl must
  follow none;
- ``/robots.txt``: for ``*``, ``Disallow: /private/``, ``/cart``, ``/account/`` and
  ``/*?*sessionid=``; groups for ``BadBot`` (``Disallow: /``) and ``SlowBot``; a
  ``Sitemap:`` line. ``/sitemap.xml``: the categories and every 50th product page
  (all already linked, so nothing is orphaned);
- ``/__stats``: request counts as JSON, by host and first path segment (a query with
  ``sessionid`` counts as ``?sessionid``). Nothing links to it, and it is not
  counted itself.

Bodies are generated on demand from a seeded RNG per page (about 0.1 ms) and the
last couple of thousand are cached, so the server starts at once for any ``--pages``.
``expected_urls(pages, port)`` gives the canonical URL of every page a correct crawl
fetches and parses. ``ShopSite(...).write_static(folder)`` writes the same pages as
files, for nginx to serve (``compare.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import signal
import socket
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiohttp import web

__all__ = ["ShopSite", "expected_paths", "expected_urls", "is_disallowed", "main"]

HOST = "127.0.0.1"
SEARCH_EVERY = 4  # page i % 4 == 0 links its search page in three parameter orders
PRIVATE_EVERY = 25  # page i % 25 == 0 links /private/i.html (robots: disallowed)
SITEMAP_EVERY = 50  # /sitemap.xml lists every 50th page (and the categories)
CATEGORY_PRODUCTS = 48  # product links on a category page
DESCRIPTION = 35  # paragraphs of a product's description
REVIEWS = 12  # reviews on a product page
SPECS = 16  # rows of a product's specs table
ALSO_VIEWED = 12  # "customers also viewed" product links on a product page
CACHE_PAGES = 2048  # about 80 MB of 40 KB pages
PRIVATE_BODY = b"<html><body>secret</body></html>"

_WORD_TEXT = (
    "alpine anchor amber basalt beacon birch cedar chrome cobalt copper coral crystal "
    "delta ember falcon fern flint garnet glacier granite harbor hazel indigo iris ivory "
    "jade juniper kelp lagoon lantern linen lotus maple marble meadow mesa nickel oak "
    "onyx opal orchid pebble pine prairie quartz raven reef ridge river saffron sage "
    "sierra slate spruce summit tidal timber topaz tundra umber valley velvet willow zinc"
)
_WORDS = tuple(_WORD_TEXT.split())
_NOUN_TEXT = (
    "backpack blender bottle candle chair clock desk headphones jacket kettle lamp mug "
    "notebook pan pillow plant pot rug scarf shelf speaker stool tent towel umbrella watch"
)
_NOUNS = tuple(_NOUN_TEXT.split())
_CATEGORY_TEXT = (
    "home kitchen outdoor office garden travel audio apparel bath bedding lighting storage "
    "tools camping cycling fitness toys books stationery pets baby beauty grooming coffee "
    "tea pantry decor rugs furniture gifts"
)
CATEGORIES = tuple(_CATEGORY_TEXT.split())  # /c/{k}.html, k < 30
INFO_PAGES = (
    "about", "contact", "shipping", "returns", "privacy", "terms",
    "faq", "careers", "press", "stores", "gift-cards", "sustainability",
)  # fmt: skip
SOCIAL = ("facebook", "instagram", "pinterest")  # https://social.invalid/{name}/benchshop
# What robots.txt disallows for every crawler: never fetched by a correct crawl.
DISALLOWED = ("/private/", "/cart", "/account/", "/*?*sessionid=")
# The same rules as one pattern over a request URI: a prefix, "*" any characters.
_DISALLOWED_URI = re.compile("|".join(re.escape(rule).replace(r"\*", ".*") for rule in DISALLOWED))


def is_disallowed(uri: str) -> bool:
    """Whether robots.txt disallows this request URI (path and query) for every agent."""
    return _DISALLOWED_URI.match(uri) is not None


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randrange(9, 18))]
    return " ".join(words).capitalize() + "."


def _paragraph_pool(seed: int, size: int = 256) -> tuple[str, ...]:
    rng = random.Random(seed)
    return tuple(" ".join(_sentence(rng) for _ in range(rng.randrange(3, 6))) for _ in range(size))


def _stylesheet(seed: int) -> str:
    """About 4 KB of CSS: the rules a shop theme inlines above the fold."""
    rng = random.Random(seed * 31 + 1)
    props = (
        "margin:{}px", "padding:{}px {}px", "font-size:{}px", "line-height:1.{}",
        "border-radius:{}px", "gap:{}px", "max-width:{}0px", "letter-spacing:.0{}em",
        "color:#{:03x}", "background:#{:03x}", "border:1px solid #{:03x}", "z-index:{}",
    )  # fmt: skip
    selectors = (
        "body", "header", ".logo", ".account", ".basket", ".mega-menu", ".mega-menu li",
        ".mega-menu a", ".mega-menu a:hover", ".breadcrumb", ".breadcrumb li", "h1", "h2",
        "h3", ".product", ".product .name", ".product .sku", ".product .price", ".buy",
        ".buy .add", ".gallery", ".gallery img", ".tabs", ".tabs a", ".description p",
        ".specs", ".specs th", ".specs td", ".reviews", ".review", ".review .stars",
        ".review .author", ".review time", ".cards", ".card", ".card img", ".card-name",
        ".card-price", "aside", "aside .links li", ".session", "footer", "footer .info",
        "footer .info li", "footer .social", ".to-top", ".newsletter", ".newsletter input",
        ".badge", ".badge-sale", ".rating", ".stock", ".stock-low", ".delivery", ".promo",
        ".promo strong", ".featured", ".consent", ".listing", ".intro p", ".results",
    )  # fmt: skip

    def rule(selector: str) -> str:
        chosen = rng.sample(props, rng.randrange(3, 5))
        values = ";".join(
            p.format(*(rng.randrange(4096 if "#" in p else 48) for _ in range(2))) for p in chosen
        )
        return f"{selector}{{{values}}}"

    narrow = "".join(rule(s) for s in selectors[:6])
    return "\n".join(map(rule, selectors)) + f"\n@media (max-width:720px){{{narrow}}}"


def _script(seed: int) -> str:
    """About 4 KB of JavaScript: a shop's basket, menu, consent and analytics code."""
    rng = random.Random(seed * 31 + 2)
    events = ",".join(
        f'"{name}":{{"category":"{rng.choice(_WORDS)}","action":"click",'
        f'"label":"{rng.choice(_WORDS)}-{rng.choice(_NOUNS)}","value":{rng.randrange(100)}}}'
        for name in CATEGORIES
    )
    return (
        "(function(w,d){'use strict';\n"
        "var EVENTS={" + events + "};\n"
        "var state={basket:[],consent:null,menuOpen:false,viewed:[]};\n"
        "function $(s,r){return (r||d).querySelector(s)}\n"
        "function $$(s,r){return Array.prototype.slice.call((r||d).querySelectorAll(s))}\n"
        "function track(name,extra){var e=EVENTS[name]||{category:'other',action:name};"
        "w.dataLayer=w.dataLayer||[];w.dataLayer.push(Object.assign({event:name},e,"
        "extra||{}))}\n"
        "function readBasket(){try{return JSON.parse(w.localStorage.getItem('basket')||"
        "'[]')}catch(err){return []}}\n"
        "function writeBasket(items){try{w.localStorage.setItem('basket',JSON.stringify("
        "items))}catch(err){}var n=$('.basket .count');if(n){n.textContent=String(items."
        "length)}}\n"
        "function addToBasket(sku,price){var items=readBasket();items.push({sku:sku,"
        "price:price,at:Date.now()});writeBasket(items);track('add_to_basket',{sku:sku,"
        "price:price})}\n"
        "function toggleMenu(open){state.menuOpen=open===undefined?!state.menuOpen:open;"
        "var m=$('.mega-menu');if(m){m.classList.toggle('open',state.menuOpen)}}\n"
        "function lazyImages(){if(!('IntersectionObserver' in w)){return}var io=new "
        "IntersectionObserver(function(entries){entries.forEach(function(en){if(en."
        "isIntersecting){var img=en.target;img.src=img.dataset.src;io.unobserve(img)}})},"
        "{rootMargin:'200px'});$$('img[data-src]').forEach(function(img){io.observe(img)})"
        "}\n"
        "function consent(){var c=w.localStorage&&w.localStorage.getItem('consent');"
        "state.consent=c;if(!c){var b=d.createElement('div');b.className='consent';"
        "b.textContent='We use cookies to run this shop.';d.body.appendChild(b)}}\n"
        "function rememberViewed(){var p=w.__PAGE__||{};if(!p.sku){return}var v=[];try{"
        "v=JSON.parse(w.sessionStorage.getItem('viewed')||'[]')}catch(err){}v.unshift("
        "p.sku);state.viewed=v.slice(0,12);try{w.sessionStorage.setItem('viewed',JSON."
        "stringify(state.viewed))}catch(err){}}\n"
        "d.addEventListener('click',function(ev){var a=ev.target.closest&&ev.target."
        "closest('[data-track]');if(a){track(a.getAttribute('data-track'))}var add=ev."
        "target.closest&&ev.target.closest('.add');if(add&&w.__PAGE__){ev.preventDefault("
        ");addToBasket(w.__PAGE__.sku,w.__PAGE__.price)}});\n"
        "d.addEventListener('DOMContentLoaded',function(){writeBasket(readBasket());"
        "lazyImages();consent();rememberViewed();track('page_view',{page:(w.__PAGE__||{})"
        ".type})});\n"
        "w.shop={track:track,addToBasket:addToBasket,toggleMenu:toggleMenu};\n"
        "})(window,document);"
    )


def _number(text: str, limit: int) -> int | None:
    """``int(text)`` when TEXT is a decimal below LIMIT written as a file name has it
    (no sign, no leading zero), else ``None``: what has a file in ``write_static``."""
    if text.isascii() and text.isdigit() and str(int(text)) == text and int(text) < limit:
        return int(text)
    return None


def expected_paths(pages: int) -> list[str]:
    """Path and query of every page a correct crawl fetches and parses."""
    paths = ["/"]
    paths += [f"/p/{i}.html" for i in range(pages)]
    paths += [f"/c/{k}.html" for k in range(len(CATEGORIES))]
    paths += [f"/info/{name}.html" for name in INFO_PAGES]
    paths += [f"/search?q={i}&page=1&sort=price" for i in range(0, pages, SEARCH_EVERY)]
    return paths


def expected_urls(pages: int, port: int) -> set[str]:
    """Canonical URLs (``crawler.urls.canonicalize``) of every page a crawl must visit."""
    from crawler.urls import canonicalize

    base = f"http://{HOST}:{port}"
    return {canonicalize(base + path) for path in expected_paths(pages)}


class ShopSite:
    """The page generator and the aiohttp handler; ``counts`` records every request."""

    def __init__(self, pages: int, *, port: int = 0, seed: int = 7) -> None:
        if pages < 1:
            raise ValueError("pages must be at least 1")
        self.pages = pages
        self.seed = seed
        self.port = port  # set before serving: absolute and off-site links name it
        self.paragraphs = _paragraph_pool(seed)
        self.style = _stylesheet(seed)
        self.script = _script(seed)
        self.counts: Counter[str] = Counter()
        self.product = lru_cache(maxsize=1 << 16)(self._product)  # 13 on every product page
        self.page_body = lru_cache(maxsize=CACHE_PAGES)(self._page_body)
        self.search_body = lru_cache(maxsize=CACHE_PAGES)(self._search_body)
        self.category_body = lru_cache(maxsize=len(CATEGORIES))(self._category_body)
        self.info_body = lru_cache(maxsize=len(INFO_PAGES))(self._info_body)
        self.header = self._header()
        self.footer = self._footer()

    # content ------------------------------------------------------------------------------

    def _rng(self, i: int, salt: int = 0) -> random.Random:
        return random.Random((self.seed * 1_000_003 + i) * 7 + salt)

    def links_of(self, i: int) -> list[tuple[str, str]]:
        """(href, anchor text) of product page ``i``'s aside: about 16 links in every form
        a crawler meets, its search page's spellings, the disallowed ``?sessionid=`` link."""
        n, rng = self.pages, self._rng(i, 1)
        port = self.port
        other = [rng.randrange(n) for _ in range(9)]
        links = [("/", "Home"), ("/p/0.html#top", "All products")]
        for child, style in zip((2 * i + 1, 2 * i + 2), (0, 1), strict=True):
            if child < n:
                href = f"{child}.html" if style == 0 else f"/p/{child}.html"
                links.append((href, f"Related item {child}"))
        links += [
            (f"./{other[0]}.html#reviews", "Reviews"),
            (f"../p/{other[1]}.html", "Also bought"),
            (f"/p/{other[2]}.html#specs", "Specifications"),
            (f"http://{HOST}:{port}/p/{other[3]}.html", "Popular"),
            (f"http://{HOST}:{port}/p/{other[4]}.html#section-{i % 7}", "Featured"),
            (f"//{HOST}:{port}/p/{other[5]}.html", "Deal of the day"),
            (f"{other[6]}.html#top", "Recently viewed"),
            (f"http://localhost:{port}/p/{other[7]}.html", "Mirror"),  # another host: off-site
            ("https://elsewhere.invalid/", "Partner shop"),  # off-site, never resolved
            ("mailto:help@shop.invalid", "Contact"),
            # robots.txt: Disallow: /*?*sessionid=
            (f"/p/{other[8]}.html?sessionid={rng.getrandbits(64):016x}", "Continue shopping"),
        ]
        if i % SEARCH_EVERY == 0:  # one page, three spellings; the query is sorted to match
            links += [
                (f"/search?q={i}&page=1&sort=price", "Search similar"),
                (f"/search?sort=price&q={i}&page=1#results", "More like this"),
                (f"/search?page=1&sort=price&q={i}", "Cheapest first"),
            ]
        if i % PRIVATE_EVERY == 0:
            links.append((f"/private/{i}.html", "Staff notes"))
        return links

    def _product(self, i: int) -> tuple[str, str, str]:
        """(name, sku, price) of product ``i``."""
        rng = self._rng(i, 2)
        name = f"{rng.choice(_WORDS).capitalize()} {rng.choice(_NOUNS)} {i}"
        price = f"${rng.randrange(2, 900)}.{rng.randrange(100):02d}"
        return name, f"SKU-{i:06d}", price

    def _header(self) -> str:
        menu = "".join(
            f'<li><a href="/c/{k}.html" data-track="{c}">{c.title()}</a>'
            f"<span>{_WORDS[(k * 7) % len(_WORDS)]} and {_WORDS[(k * 11) % len(_WORDS)]}"
            "</span></li>"
            for k, c in enumerate(CATEGORIES)
        )
        return (
            '<header id="top"><a class="logo" href="/">Benchmark Shop</a>'
            '<form class="search" action="/search" method="get"><input type="search" '
            'name="q" placeholder="Search"><input type="hidden" name="page" value="1">'
            '<input type="hidden" name="sort" value="price"></form>'
            '<a class="account" href="/account/">My account</a>'
            '<a class="basket" href="/cart">Basket <span class="count">0</span></a>'
            f'<nav class="mega-menu"><ul>{menu}</ul></nav></header>\n'
        )

    def _footer(self) -> str:
        info = "".join(
            f'<li><a href="/info/{name}.html" data-track="{name}">'
            f"{name.replace('-', ' ').title()}</a></li>"
            for name in INFO_PAGES
        )
        social = "".join(
            f'<li><a href="https://social.invalid/{name}/benchshop">{name.title()}</a></li>'
            for name in SOCIAL
        )
        return (
            f'<footer><ul class="info">{info}</ul><ul class="social">{social}</ul>'
            '<form class="newsletter"><input type="email" name="email" '
            'placeholder="Your e-mail"><button>Subscribe</button></form>'
            '<a class="to-top" href="#top">Back to top</a>'
            "<p>&copy; Benchmark Shop. Generated for crawler benchmarks. Prices include "
            "VAT; delivery in 2 to 4 working days.</p></footer>\n"
        )

    def _cards(self, numbers: list[int], track: str) -> str:
        cards = []
        for j in numbers:
            name, _sku, price = self.product(j)
            cards.append(
                f'<li class="card"><a href="/p/{j}.html" data-track="{track}">'
                f'<img data-src="/static/img/{j}-s.jpg" alt="{name}" width="160" height="160">'
                f'<span class="card-name">{name}</span></a>'
                f'<span class="card-price">{price}</span></li>'
            )
        return f'<ul class="cards">{"".join(cards)}</ul>'

    def _page(
        self,
        title: str,
        path: str,
        i: int,
        main: str,
        page_type: str,
        jsonld: dict[str, Any] | None = None,
    ) -> bytes:
        """A full page: head (style, script, metadata), header, MAIN, one product block
        for product ``i`` unless MAIN has it, footer."""
        name, sku, price = self.product(i)
        url = f"http://{HOST}:{self.port}{path}"
        data = json.dumps(
            {"type": page_type, "sku": sku, "price": price[1:], "name": name, "path": path},
            separators=(",", ":"),
        )
        head = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{title} | Benchmark Shop</title>"
            f'<meta name="description" content="{title}: {name} and more at Benchmark Shop">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="canonical" href="{url}">'
            f'<meta property="og:title" content="{title}">'
            '<meta property="og:type" content="website">'
            f'<meta property="og:url" content="{url}">'
            f'<meta property="og:image" content="http://{HOST}:{self.port}/static/img/{i}.jpg">'
            f"<style>\n{self.style}\n</style>\n"
            f"<script>window.__PAGE__={data};</script>\n"
        )
        if jsonld is not None:
            ld = json.dumps(jsonld, separators=(",", ":"))
            head += f'<script type="application/ld+json">{ld}</script>\n'
        head += f"<script>\n{self.script}\n</script></head>\n<body>"
        if '<div class="product">' not in main:  # every page has one product block
            main += (
                f'<aside class="featured"><h2>Featured</h2><div class="product">'
                f'<span class="name">{name}</span><span class="sku">{sku}</span>'
                f'<span class="price">{price}</span></div>'
                f'<a href="/p/{i}.html">See {name}</a></aside>\n'
            )
        return (f"{head}{self.header}<main>{main}</main>\n{self.footer}</body></html>\n").encode()

    def _page_body(self, i: int) -> bytes:
        rng = self._rng(i, 3)
        n = self.pages
        name, sku, price = self.product(i)
        k = i % len(CATEGORIES)
        category = CATEGORIES[k].title()
        title = f"Product {i}"
        gallery = "".join(
            f'<img src="/static/img/{i}-{m}.jpg" srcset="/static/img/{i}-{m}-2x.jpg 2x" '
            f'alt="{name}, view {m + 1}" width="640" height="640">'
            for m in range(4)
        )
        # choices(): one draw per value, several times faster than choice() or randrange().
        paragraphs = rng.choices(self.paragraphs, k=DESCRIPTION + REVIEWS)
        words = iter(rng.choices(_WORDS, k=SPECS * 2 + REVIEWS * 4 + 1))
        numbers = iter(rng.choices(range(1, 500), k=SPECS + REVIEWS * 3))
        description = "".join(f"<p>{p}</p>" for p in paragraphs[:DESCRIPTION])
        specs = "".join(
            f"<tr><th>{next(words).title()}</th><td>{next(words)} {next(numbers)} mm</td></tr>"
            for _ in range(SPECS)
        )
        stars = [1 + next(numbers) % 5 for _ in range(REVIEWS)]
        noun = name.split()[1]
        reviews = "".join(
            f'<article class="review"><h3>{next(words).title()} {noun}, '
            f'{next(words)}</h3><p class="stars" data-stars="{s}">{s} of 5</p>'
            f'<p class="author">{next(words).title()} {next(words)[0].upper()}.</p>'
            f'<time datetime="2026-{1 + next(numbers) % 12:02d}-{1 + next(numbers) % 28:02d}">'
            f"verified purchase</time><p>{p}</p></article>"
            for s, p in zip(stars, paragraphs[DESCRIPTION:], strict=True)
        )
        viewed = self._cards(rng.choices(range(n), k=ALSO_VIEWED), "also_viewed")
        anchors = "".join(
            f'<li class="link"><a href="{href}" title="{text}">{text}</a></li>'
            for href, text in self.links_of(i)
        )
        main = (
            f'<ol class="breadcrumb"><li><a href="/">Home</a></li>'
            f'<li><a href="/c/{k}.html">{category}</a></li><li>{name}</li></ol>'
            f"<h1>{title}</h1>\n"
            f'<div class="product"><span class="name">{name}</span>'
            f'<span class="sku">{sku}</span><span class="price">{price}</span></div>\n'
            f'<div class="buy"><p class="stock">In stock: {rng.randrange(1, 60)} left</p>'
            f'<a class="add" href="/cart?add={i}">Add to basket</a>'
            f'<p class="delivery">Delivery in {rng.randrange(1, 5)} working days</p></div>\n'
            f'<div class="gallery">{gallery}</div>\n'
            '<nav class="tabs"><a href="#description">Description</a>'
            '<a href="#specs">Specifications</a><a href="#reviews">Reviews</a></nav>\n'
            f'<section class="description" id="description">{description}</section>\n'
            f'<table class="specs" id="specs">{specs}</table>\n'
            f'<section class="reviews" id="reviews"><h2>Reviews</h2>{reviews}</section>\n'
            f'<section class="also-viewed"><h2>Customers also viewed</h2>{viewed}</section>\n'
            f'<aside><ul class="links">{anchors}</ul></aside>\n'
        )
        jsonld = {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": name,
            "sku": sku,
            "description": self.paragraphs[i % len(self.paragraphs)],
            "category": category,
            "image": [f"http://{HOST}:{self.port}/static/img/{i}-{m}.jpg" for m in range(4)],
            "brand": {"@type": "Brand", "name": next(words).title()},
            "offers": {
                "@type": "Offer",
                "url": f"http://{HOST}:{self.port}/p/{i}.html",
                "priceCurrency": "USD",
                "price": price[1:],
                "availability": "https://schema.org/InStock",
            },
            "aggregateRating": {
                "@type": "AggregateRating",
                "ratingValue": round(sum(stars) / len(stars), 1),
                "reviewCount": len(stars),
            },
            "review": [
                {"@type": "Review", "reviewRating": {"@type": "Rating", "ratingValue": s}}
                for s in stars[:3]
            ],
        }
        return self._page(title, f"/p/{i}.html", i, main, "product", jsonld)

    def category_products(self, k: int) -> list[int]:
        """The first products of category ``k``: ``i % 30 == k``."""
        return list(range(k, self.pages, len(CATEGORIES)))[:CATEGORY_PRODUCTS]

    def _category_body(self, k: int) -> bytes:
        rng = self._rng(k, 6)
        category = CATEGORIES[k].title()
        title = f"Category {k}: {category}"
        numbers = self.category_products(k)
        intro = "".join(f"<p>{rng.choice(self.paragraphs)}</p>" for _ in range(3))
        main = (
            f'<ol class="breadcrumb"><li><a href="/">Home</a></li><li>{category}</li></ol>'
            f'<h1>{title}</h1>\n<section class="intro">{intro}</section>\n'
            f'<section class="listing">{self._cards(numbers, CATEGORIES[k])}</section>\n'
        )
        featured = numbers[0] if numbers else k % self.pages
        return self._page(title, f"/c/{k}.html", featured, main, "category")

    def _info_body(self, name: str) -> bytes:
        index = INFO_PAGES.index(name)
        rng = self._rng(index, 7)
        title = name.replace("-", " ").title()
        text = "".join(f"<p>{rng.choice(self.paragraphs)}</p>" for _ in range(2))
        main = f'<h1>{title}</h1>\n<section class="info-text">{text}</section>\n'
        return self._page(title, f"/info/{name}.html", index % self.pages, main, "info")

    def _search_body(self, i: int) -> bytes:
        numbers = [(i * 31 + k) % self.pages for k in range(12)]
        main = (
            f"<h1>Search results for {i}</h1>\n"
            f'<p><a href="/p/{i}.html">Back to the product</a></p>\n'
            f'<section class="results" id="results">{self._cards(numbers, "search")}</section>\n'
        )
        return self._page(
            f"Search results for {i}", f"/search?q={i}&page=1&sort=price", i, main, "search"
        )

    def home_body(self) -> bytes:
        rng = self._rng(0, 5)
        numbers = [rng.randrange(self.pages) for _ in range(12)]
        main = (
            '<h1>Home</h1>\n<p><a href="/p/0.html">All products</a> '
            '<a href="/p/0.html#top">Top</a></p>\n'
            f'<section class="bestsellers"><h2>Bestsellers</h2>'
            f"{self._cards(numbers, 'bestsellers')}</section>\n"
        )
        return self._page("Home", "/", 0, main, "home")

    def robots(self) -> bytes:
        rules = "".join(f"Disallow: {rule}\n" for rule in DISALLOWED)
        return (
            "# Benchmark Shop\n"
            f"User-agent: *\n{rules}\n"
            "User-agent: BadBot\nDisallow: /\n\n"
            "User-agent: SlowBot\nCrawl-delay: 10\nDisallow: /search\n"
            f"{rules}\n"
            f"Sitemap: http://{HOST}:{self.port}/sitemap.xml\n"
        ).encode()

    def sitemap(self) -> bytes:
        paths = [f"/c/{k}.html" for k in range(len(CATEGORIES))]
        paths += [f"/p/{i}.html" for i in range(0, self.pages, SITEMAP_EVERY)]
        locs = "".join(f"<url><loc>http://{HOST}:{self.port}{path}</loc></url>" for path in paths)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
        ).encode()

    def write_static(self, root: Path) -> int:
        """Every page this site serves, as files under ROOT, for a static server (nginx)
        to serve the same bytes; returns how many files were written.

        ``/`` is ``index.html``; ``/search?q=I&page=1&sort=price`` is ``search/I.html``:
        the server maps the query to the file, so every parameter order gets the one
        page. Set ``port`` first: absolute and off-site links name it.
        """
        files: dict[str, bytes] = {
            "index.html": self.home_body(),
            "robots.txt": self.robots(),
            "sitemap.xml": self.sitemap(),
        }
        files.update({f"c/{k}.html": self._category_body(k) for k in range(len(CATEGORIES))})
        files.update({f"info/{name}.html": self._info_body(name) for name in INFO_PAGES})
        for folder in ("p", "c", "info", "search", "private"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        for name, body in files.items():
            (root / name).write_bytes(body)
        written = len(files)
        for i in range(self.pages):
            # The uncached renderers: each page is written once, and the LRU stays empty.
            (root / "p" / f"{i}.html").write_bytes(self._page_body(i))
            written += 1
            if i % SEARCH_EVERY == 0:
                (root / "search" / f"{i}.html").write_bytes(self._search_body(i))
                written += 1
            if i % PRIVATE_EVERY == 0:
                (root / "private" / f"{i}.html").write_bytes(PRIVATE_BODY)
                written += 1
        return written

    # serving ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "port": self.port,
            "requests": dict(sorted(self.counts.items())),
        }

    async def handle(self, request: web.BaseRequest) -> web.Response:
        path = request.path
        if path == "/__stats":
            return web.json_response(self.stats())
        host = request.host.rsplit(":", 1)[0] if request.host else ""
        prefix = "/" + path.split("/", 2)[1] if path.count("/") > 1 else path
        if "sessionid" in request.query:
            prefix = "?sessionid"
        self.counts[f"{host} {prefix}"] += 1
        body: bytes | None = None
        if path == "/":
            body = self.home_body()
        elif path.startswith("/p/") and path.endswith(".html"):
            if (i := _number(path[3:-5], self.pages)) is not None:
                body = self.page_body(i)
        elif path.startswith("/c/") and path.endswith(".html"):
            if (k := _number(path[3:-5], len(CATEGORIES))) is not None:
                body = self.category_body(k)
        elif path.startswith("/info/") and path.endswith(".html"):
            if (name := path[6:-5]) in INFO_PAGES:
                body = self.info_body(name)
        elif path == "/search":  # nginx.py's mapping: page=1, sort=price, q a page number
            query = request.query
            q = _number(query.get("q", ""), self.pages)
            if q is not None and query.get("page") == "1" and query.get("sort") == "price":
                body = self.search_body(q)
        elif path.startswith("/private/"):
            return web.Response(body=PRIVATE_BODY, content_type="text/html")
        elif path == "/robots.txt":
            return web.Response(body=self.robots(), content_type="text/plain")
        elif path == "/sitemap.xml":
            return web.Response(body=self.sitemap(), content_type="application/xml")
        if body is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=body, content_type="text/html", charset="utf-8")


async def serve(site: ShopSite, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = web.Server(site.handle, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    site.port = sock.getsockname()[1]
    await web.SockSite(runner, sock, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening on http://{HOST}:{site.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=2000, help="product pages (default 2000)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stats", type=Path, help="write request counts here on exit")
    args = parser.parse_args(argv)
    site = ShopSite(args.pages, port=args.port, seed=args.seed)
    try:
        asyncio.run(serve(site, args.port))
    finally:
        if args.stats is not None:
            args.stats.write_text(json.dumps(site.stats(), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
