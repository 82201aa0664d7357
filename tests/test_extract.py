"""Extraction rules written in the config: every source, option and type, on saved and
served pages; config mistakes named by key; the demo shop scraped without Python."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler.config import Config, load_config, parse_config
from crawler.crawl import Crawler
from crawler.errors import ConfigError
from crawler.parse import ExtractFailure, Item, Link, Page, Site, load_site
from crawler.parse.rules import RuleSite, apply_rule

ROOT = Path(__file__).resolve().parent.parent
PAGES = Path(__file__).parent / "pages"


def rules(*tables: dict[str, Any]) -> RuleSite:
    config = parse_config({"crawl": {"start_urls": ["http://a.test/"]}, "extract": list(tables)})
    return RuleSite(config.extract)


def page(html: str, url: str = "http://a.test/shop/c1/item-7.html") -> Page:
    return Page(url, 200, {"content-type": "text/html"}, html.encode())


def saved(name: str, url: str = "https://shop.example/music/t900.html") -> Page:
    return page((PAGES / name).read_text(encoding="utf-8"), url)


def items(site: RuleSite, of: Page) -> list[dict[str, Any]]:
    return [dict(r) for r in site.parse(of) if isinstance(r, Item)]


def failures(site: RuleSite, of: Page) -> list[str]:
    return [r.message for r in site.parse(of) if isinstance(r, ExtractFailure)]


def test_every_source_and_type_on_a_saved_page() -> None:
    site = rules({"name": "product", "fields": {
        "title": "h1",
        "name": ".product.featured .name",
        "price": {"css": ".featured .price", "type": "number"},
        "sku": {"xpath": "//div[contains(@class, 'featured')]//span[@class='sku']/text()"},
        "image": {"css": "div.featured img", "attr": "src", "type": "url"},
        "code": {"css": ".featured .sku", "regex": r"MU-(\d+)", "type": "int"},
        "skus": {"css": ".sku", "all": True},
        "description": {"meta": "description"},
        "markup": {"css": ".featured .price", "type": "html"},
        "in_stock": {"css": "a[rel=nofollow]", "attr": "href", "regex": "cart", "type": "bool"},
        "on_sale": {"css": ".sale", "type": "bool"},
        "rating": {"css": ".rating", "default": "none yet"},
    }})  # fmt: skip
    [item] = items(site, saved("product.html"))
    assert item == {
        "url": "https://shop.example/music/t900.html", "type": "product",
        "title": "Studio Turntable T-900", "name": "Studio Turntable T-900",
        "price": 1299.0, "sku": "MU-0900", "image": "https://shop.example/static/t900.jpg",
        "code": 900, "skus": ["MU-0900", "MU-0017"],
        "description": "A belt-driven turntable with a carbon tonearm.",
        "markup": '<span class="price">$1,299.00</span>', "in_stock": True, "on_sale": False,
        "rating": "none yet",
    }  # fmt: skip


def test_each_makes_an_item_per_element_and_required_rejects_the_rest() -> None:
    html = ("<div class=p><b class=n>A</b><i class=v>1.299,50 €</i></div>"
            "<div class=p><b class=n>B</b><i class=v>7</i></div>"
            "<div class=p><i class=v>9</i></div>")  # fmt: skip
    site = rules({"name": "row", "each": "div.p", "required": ["name"], "fields": {
        "name": ".n", "price": {"css": ".v", "type": "number", "decimal": ","},
    }})  # fmt: skip
    assert [(i["name"], i["price"]) for i in items(site, page(html))] == [("A", 1299.5), ("B", 7.0)]
    assert failures(site, page(html)) == ["row: element 2 of each: required name found nothing"]


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        (['{"@type": "Product", "brand": {"name": "Acme"}}'], "Acme"),
        (["{not json", '{"brand": {"name": "Second"}}'], "Second"),  # a broken block is passed over
        (['[{"@type": "Thing"}, {"brand": {"name": "InList"}}]'], "InList"),
        (['{"@graph": [{"@type": "WebPage"}, {"brand": {"name": "InGraph"}}]}'], "InGraph"),
        (['{"offers": {"items": [{"name": "x"}]}}'], None),
    ],
)
def test_jsonld_paths(blocks: list[str], expected: str | None) -> None:
    scripts = "".join(f'<script type="application/ld+json">{b}</script>' for b in blocks)
    site = rules({"name": "p", "fields": {"brand": {"jsonld": "brand.name"}}})
    [item] = items(site, page(f"<html><head>{scripts}</head><body></body></html>"))
    assert item.get("brand") == expected


def test_jsonld_indexes_lists() -> None:
    block = '{"offers": [{"price": 5}, {"price": "7.50"}]}'
    site = rules({"name": "p", "fields": {
        "second": {"jsonld": "offers.1.price", "type": "number"},
        "first": {"jsonld": "offers.0.price", "type": "int"},
    }})  # fmt: skip
    [item] = items(site, page(f'<script type="application/ld+json">{block}</script>'))
    assert (item["second"], item["first"]) == (7.5, 5)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("$1,299.00", "number", 1299.0),
        ("2026-12-03T10:00:00+01:00", "date", "2026-12-03T09:00:00+00:00"),
        ("3 December 2026", "date", "2026-12-03"),
        ('{"a": [1, 2]}', "json", {"a": [1, 2]}),
        ("no", "bool", False),
        ("yes", "bool", True),
        ("42", "int", 42),
    ],
)
def test_types(text: str, kind: str, value: Any) -> None:
    site = rules({"name": "p", "fields": {"v": {"css": "p", "type": kind}}})
    [item] = items(site, page(f"<p>{text}</p>"))
    assert item["v"] == value


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("call us", "number", "field v: cannot read 'call us' as a number"),
        ("4.5", "int", "field v: cannot read '4.5' as an integer"),
        ("someday", "date", "field v: cannot read 'someday' as a date"),
        ("{oops", "json", "field v: cannot read '{oops' as JSON"),
    ],
)
def test_a_value_that_is_not_its_type_is_an_extract_failure(
    text: str, kind: str, message: str
) -> None:
    site = rules({"name": "p", "fields": {"v": {"css": "p", "type": kind}}})
    assert items(site, page(f"<p>{text}</p>")) == []
    assert failures(site, page(f"<p>{text}</p>")) == [f"p: the page: {message}"]


def test_malformed_html_and_missing_elements() -> None:
    site = rules({"name": "p", "fields": {"name": "h1", "price": ".price", "regexed": {
        "css": "h1", "regex": "NOPE-(\\d+)"}}})  # fmt: skip
    [item] = items(site, page("<html><body><h1>Broken <b>markup<div></h1><p>"))
    assert item == {"url": "http://a.test/shop/c1/item-7.html", "type": "p",
                    "name": "Broken markup"}  # fmt: skip
    result = apply_rule(site.rules[0], page("<h1>x</h1>"))
    assert result.missing == ["price", "regexed"]


def test_match_follow_and_several_rules() -> None:
    html = ('<h1>T</h1><a class="next" href="/p2">n</a><a href="/other">o</a>'
            '<nav class="pagination"><a href="/p3">3</a></nav>')  # fmt: skip
    site = rules(
        {"name": "a", "match": r"item-\d+\.html$", "follow": ["a.next", "nav.pagination a"],
         "fields": {"t": "h1"}},
        {"name": "b", "fields": {"t": "h1"}},
        {"name": "c", "match": "/never/", "fields": {"t": "h1"}},
    )  # fmt: skip
    results = list(site.parse(page(html)))
    assert [r["type"] for r in results if isinstance(r, Item)] == ["a", "b"]
    assert [r.url for r in results if isinstance(r, Link)] == [
        "http://a.test/p2",
        "http://a.test/p3",
    ]
    elsewhere = list(site.parse(page(html, url="http://a.test/list.html")))
    assert [r["type"] for r in elsewhere if isinstance(r, Item)] == ["b"]
    assert len([r for r in elsewhere if isinstance(r, Link)]) == 3  # no follow: every link


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"fields": {"p": {"css": ".product-price["}}},
            'extract[0].fields.p.css: invalid CSS selector ".product-price["',
        ),
        ({"fields": {"p": {"xpath": "//span[@x="}}}, "extract[0].fields.p.xpath: invalid XPath"),
        (
            {"fields": {"p": {"css": "p", "type": "money"}}},
            "extract[0].fields.p.type: expected one of string",
        ),
        (
            {"fields": {"p": {"css": "p", "regex": "("}}},
            "extract[0].fields.p.regex: invalid regular expression",
        ),
        (
            {"fields": {"p": {"css": "p", "colour": "red"}}},
            "extract[0].fields.p.colour: expected a key of css",
        ),
        (
            {"fields": {"url": "h1"}},
            "extract[0].fields.url: expected a field name the crawl does not add",
        ),
        ({"fields": {"round": "h1"}}, "extract[0].fields.round: expected a field name"),
        (
            {"fields": {"p": {"css": "p", "xpath": "//p"}}},
            "extract[0].fields.p: expected exactly one of",
        ),
        ({"fields": {}}, "extract[0].fields: expected an [extract.fields] table"),
        (
            {"fields": {"p": "p"}, "required": ["q"]},
            "extract[0].required[0]: expected a field of the rule",
        ),
        ({"fields": {"p": "p"}, "match": "[a-"}, "extract[0].match: invalid regular expression"),
        (
            {"fields": {"p": "p"}, "each": "div[", "name": "x"},
            "extract[0].each: invalid CSS selector",
        ),
        ({"fields": {"p": "p"}, "follow": ["a.next", "::"]}, "extract[0].follow[1]: invalid CSS"),
        ({"fields": {"p": "p"}, "wat": 1}, "extract[0].wat: expected a key of name"),
        (
            {"fields": {"p": {"css": "p", "decimal": ";"}}},
            'extract[0].fields.p.decimal: expected "." or ","',
        ),
    ],
)
def test_config_mistakes_name_their_key(rule: dict[str, Any], message: str) -> None:
    rule = {"name": "r", **rule}
    with pytest.raises(ConfigError) as caught:
        parse_config({"crawl": {"start_urls": ["http://a.test/"]}, "extract": [rule]})
    assert str(caught.value).startswith(message), str(caught.value)


def test_two_rules_with_one_name_are_a_mistake() -> None:
    rule = {"name": "r", "fields": {"p": "p"}}
    with pytest.raises(ConfigError, match=r"extract\[1\].name: expected a name no other rule has"):
        parse_config({"crawl": {"start_urls": ["http://a.test/"]}, "extract": [rule, rule]})


def shop_config(shop: str, out: Path, engine: str) -> Config:
    """config/extract.toml as written, pointed at the demo shop on its free port."""
    config = load_config(ROOT / "config" / "extract.toml")
    return config.replace(
        crawl=dataclasses.replace(config.crawl, start_urls=(f"http://{shop}/",)),
        fetch=config.fetch.replace(engine=engine),
        output=dataclasses.replace(config.output, dir=out),
    )


async def test_the_demo_shop_scraped_by_rules_equals_the_shop_site(
    engine: str,
    demo_shop: str,
    tmp_path: Path,
) -> None:
    rules_config = shop_config(demo_shop, tmp_path / "rules", engine)
    await Crawler(rules_config).run()
    site_config = rules_config.replace(extract=(), output=dataclasses.replace(
        rules_config.output, dir=tmp_path / "site"))  # fmt: skip
    await Crawler(site_config, site=load_site("shop")).run()
    by_rules = read(tmp_path / "rules" / "products.jsonl")
    by_site = read(tmp_path / "site" / "products.jsonl")
    assert len(by_rules) == 15
    assert all(item["type"] == "product" and isinstance(item["price"], float) for item in by_rules)
    strip = [{k: v for k, v in item.items() if k != "type"} for item in by_rules]
    key = lambda item: item["url"]  # noqa: E731
    assert sorted(strip, key=key) == sorted(by_site, key=key)


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# crawl extract: try the rules on one page.


def crawl_extract(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crawler", "extract", *args],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def extract_config(tmp_path: Path, shop: str) -> Path:
    text = (ROOT / "config" / "extract.toml").read_text(encoding="utf-8")
    path = tmp_path / "extract.toml"
    path.write_text(text.replace("127.0.0.1:8000", shop), encoding="utf-8")
    return path


def test_crawl_extract_prints_the_items_of_a_served_page(demo_shop: str, tmp_path: Path) -> None:
    done = crawl_extract(str(extract_config(tmp_path, demo_shop)),
                         f"http://{demo_shop}/music/2.html")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "url": f"http://{demo_shop}/music/2.html", "type": "product",
        "name": "Music item 2", "sku": "MU-0002", "price": 11.99,
    }  # fmt: skip
    assert "crawl: rule product: 1 item" in done.stderr


def test_crawl_extract_reads_a_saved_page(demo_shop: str, tmp_path: Path) -> None:
    saved = tmp_path / "page.html"
    saved.write_text("<div class='product'><span class='name'>Saved</span>"
                     "<span class='price'>1,299.00</span></div>")  # fmt: skip
    done = crawl_extract(str(extract_config(tmp_path, demo_shop)),
                         "http://127.0.0.1:1/books/9.html", "--html", str(saved))  # fmt: skip
    assert done.returncode == 1  # sku is required, and missing
    assert done.stdout == ""
    assert "rule product: 0 items; found nothing for sku" in done.stderr
    assert "element 0 of each: required sku found nothing" in done.stderr


def test_crawl_extract_says_when_no_rule_matches(demo_shop: str, tmp_path: Path) -> None:
    done = crawl_extract(str(extract_config(tmp_path, demo_shop)), f"http://{demo_shop}/")
    assert done.returncode == 1
    assert "no rule matches" in done.stderr
    assert "product: '/\\\\w+/\\\\d+\\\\.html$'" in done.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--rule", "nope"], "--rule nope: no such rule (the rules: product)")],
)
def test_crawl_extract_usage_errors(
    extra: list[str], message: str, demo_shop: str, tmp_path: Path
) -> None:
    done = crawl_extract(str(extract_config(tmp_path, demo_shop)), f"http://{demo_shop}/", *extra)
    assert (done.returncode, done.stderr.strip()) == (2, f"crawl: {message}")


def test_crawl_extract_needs_rules(tmp_path: Path) -> None:
    config = tmp_path / "plain.toml"
    config.write_text('[crawl]\nstart_urls = ["http://127.0.0.1:1/"]\n')
    done = crawl_extract(str(config), "http://127.0.0.1:1/")
    assert done.returncode == 2
    assert "extract: expected [[extract]] rules in the config" in done.stderr


async def test_rules_run_in_parse_processes(demo_shop: str, tmp_path: Path) -> None:
    config = shop_config(demo_shop, tmp_path, "aiohttp")
    config = config.replace(crawl=dataclasses.replace(config.crawl, parse_workers=2))
    stats = await Crawler(config).run()
    products = read(tmp_path / "products.jsonl")
    assert (stats.items, len(products), stats.error_count) == (15, 15, 0)
    assert {item["sku"] for item in products} >= {"BO-0001", "MU-0005", "GA-0004"}


def test_a_named_site_keeps_its_items_and_links_beside_the_rules() -> None:
    class Listing(Site):
        name = "listing"

        def parse(self, page: Page) -> Iterator[Item | Link]:
            yield Item(url=page.url, kind="listing")
            yield Link("http://a.test/next", data={"from": "site"})

    site = RuleSite(rules({"name": "r", "fields": {"t": "h1"}}).rules, base=Listing())
    results = list(site.parse(page("<h1>T</h1><a href='/elsewhere'>e</a>")))
    assert [dict(r) for r in results if isinstance(r, Item)] == [
        {"url": "http://a.test/shop/c1/item-7.html", "kind": "listing"},
        {"url": "http://a.test/shop/c1/item-7.html", "type": "r", "t": "T"},
    ]  # fmt: skip
    assert [(r.url, r.data) for r in results if isinstance(r, Link)] == [
        ("http://a.test/next", {"from": "site"})
    ]


# What a review found: each of these failed before its fix.


@pytest.mark.parametrize(
    ("text", "kind", "decimal", "value"),
    [
        ("4.5 out of 5 stars", "number", ".", 4.5),
        ("2 for $10", "number", ".", 2.0),
        ("Was $20 now $15", "number", ".", 20.0),
        ("12 reviews", "int", ".", 12),
        ("12,00 EUR", "number", ",", 12.0),
        ("Price: 12 each", "int", ".", 12),
        ("-5", "number", ".", -5.0),
        ("1e3", "number", ".", 1000.0),
        ("1 299,00 €", "number", ",", 1299.0),
    ],
)
def test_numbers_are_the_first_number_in_the_text(
    text: str, kind: str, decimal: str, value: float
) -> None:
    site = rules({"name": "p", "fields": {"v": {"css": "p", "type": kind, "decimal": decimal}}})
    [item] = items(site, page(f"<p>{text}</p>"))
    assert item["v"] == value


def test_a_thousands_mark_that_cannot_be_one_is_an_error_not_a_guess() -> None:
    site = rules({"name": "p", "fields": {"v": {"css": "p", "type": "number"}}})
    assert failures(site, page("<p>1,5</p>")) == [
        "p: the page: field v: cannot read '1,5' as a number with '.' as its decimal mark"
    ]


def test_an_empty_element_found_nothing_but_a_bool_found_it() -> None:
    site = rules({"name": "p", "fields": {
        "rating": {"css": ".rating", "type": "number"},
        "badge": {"css": ".in-stock", "type": "bool"},
        "stock": {"css": "p", "regex": r"(In)?\s*stock", "type": "bool"},
    }})  # fmt: skip
    [item] = items(site, page('<span class="rating"></span><i class="in-stock"></i><p>stock</p>'))
    assert "rating" not in item
    assert (item["badge"], item["stock"]) == (True, True)


def test_jsonld_lists_and_objects_keep_their_shape() -> None:
    block = ('{"image": ["a.jpg", "/b.jpg"], "logo": {"@type": "ImageObject", "url": "l.png"},'
             '"offers": {"price": 3}}')  # fmt: skip
    site = rules({"name": "p", "fields": {
        "images": {"jsonld": "image", "all": True, "type": "url"},
        "first": {"jsonld": "image", "type": "url"},
        "logo": {"jsonld": "logo", "type": "url"},
        "offers": {"jsonld": "offers", "type": "json"},
        "offers_text": {"jsonld": "offers"},
    }})  # fmt: skip
    [item] = items(site, page(f'<script type="application/ld+json">{block}</script>',
                              url="http://a.test/d/p.html"))  # fmt: skip
    assert item["images"] == ["http://a.test/d/a.jpg", "http://a.test/b.jpg"]
    assert item["first"] == "http://a.test/d/a.jpg"
    assert item["logo"] == "http://a.test/d/l.png"
    assert item["offers"] == {"price": 3}
    assert json.loads(item["offers_text"]) == {"price": 3}


def test_xpath_numbers_and_booleans() -> None:
    site = rules({"name": "p", "fields": {
        "count": {"xpath": "count(//li)", "type": "int"},
        "many": {"xpath": "count(//li) > 1", "type": "bool"},
        "none": {"xpath": "boolean(//table)", "type": "bool"},
    }})  # fmt: skip
    [item] = items(site, page("<ul><li>a</li><li>b</li></ul>"))
    assert (item["count"], item["many"], item["none"]) == (2, True, False)


@pytest.mark.parametrize("text", ["2024", "Tuesday", "March", "10:30"])
def test_a_date_missing_a_part_is_not_made_up(text: str) -> None:
    site = rules({"name": "p", "fields": {"when": {"css": "p", "type": "date"}}})
    assert failures(site, page(f"<p>{text}</p>")) == [
        f"p: the page: field when: cannot read {text!r} as a date with day, month and year"
    ]


@pytest.mark.parametrize(("dayfirst", "value"), [(False, "2026-03-12"), (True, "2026-12-03")])
def test_dates_read_day_first_when_told(dayfirst: bool, value: str) -> None:
    site = rules({"name": "p", "fields": {"when": {"css": "p", "type": "date",
                                                   "dayfirst": dayfirst}}})  # fmt: skip
    [item] = items(site, page("<p>03/12/2026</p>"))
    assert item["when"] == value
