"""Page, Item, Site, load_site, and the generic and shop parsers."""

from __future__ import annotations

import pickle
import re
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import bs4
import pytest

from crawler.models import Request, Response, make_headers
from crawler.parse import Item, Link, Page, Site, load_site
from sites.generic import GenericSite
from sites.shop import ShopSite, parse_price

PAGES = Path(__file__).parent / "pages"
HTML = {"Content-Type": "text/html"}


def make_page(name: str, url: str = "https://shop.example/page.html", **kwargs: Any) -> Page:
    return Page(url, 200, HTML, (PAGES / name).read_bytes(), **kwargs)


def items(results: Iterable[Item | Link]) -> list[Item]:
    return [result for result in results if isinstance(result, Item)]


def links(results: Iterable[Item | Link]) -> list[Link]:
    return [result for result in results if isinstance(result, Link)]


@pytest.fixture
def no_soup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make building a BeautifulSoup fail, to prove a code path never does."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a BeautifulSoup was built")

    monkeypatch.setattr(bs4, "BeautifulSoup", refuse)


def test_item_is_a_dict() -> None:
    item = Item(title="T", price=1.5)
    assert item == {"title": "T", "price": 1.5}
    assert isinstance(item, dict)
    assert pickle.loads(pickle.dumps(item)) == item


class TestPage:
    def test_from_response_uses_the_final_url(self) -> None:
        request = Request("http://shop.example/old")
        response = Response(
            request,
            200,
            make_headers({"Content-Type": "text/html; charset=utf-8", "X-Thing": "1"}),
            b"<title>x</title>",
            url="https://shop.example/new",
        )
        page = Page.from_response(response, depth=2, referrer="https://shop.example/")
        assert page.url == "https://shop.example/new"
        assert page.status == 200
        assert page.headers["x-thing"] == "1"
        assert page.headers["CONTENT-TYPE"] == "text/html; charset=utf-8"
        assert page.body == b"<title>x</title>"
        assert (page.depth, page.referrer) == (2, "https://shop.example/")
        assert repr(page) == "<Page 200 https://shop.example/new>"

    def test_defaults(self) -> None:
        page = Page("http://a.example/", 404, None, b"")
        assert (page.depth, page.referrer, len(page.headers)) == (0, None, 0)

    def test_text_from_the_meta_charset(self) -> None:
        page = make_page("latin1.html")
        assert page.encoding == "cp1252"  # what browsers read iso-8859-1 as
        assert "Café crème" in page.text

    def test_header_charset_wins_over_meta(self) -> None:
        body = '<meta charset="iso-8859-1"><p>café</p>'.encode()
        page = Page("http://a.example/", 200, {"content-type": "text/html; charset=utf-8"}, body)
        assert page.encoding == "utf-8"
        assert "café" in page.text

    # Python codecs that are not text encodings, or cannot decode a document.
    @pytest.mark.parametrize(
        "charset",
        ["base64", "hex", "rot13", "zlib", "uu", "bz2", "quopri", "undefined", "idna", "punycode"],
    )
    def test_a_charset_naming_an_unusable_codec_is_ignored(self, charset: str) -> None:
        """As a browser ignores a label it does not support: the next step decides."""
        body = '<p>café</p><a href="/x">x</a>'.encode()
        header = {"content-type": f"text/html; charset={charset}"}
        meta = f'<meta charset="{charset}">'.encode()
        for page in (
            Page("http://a.example/", 200, header, body),
            Page("http://a.example/", 200, {}, meta + body),
        ):
            assert (page.encoding, page.links()) == ("utf-8", [Link("http://a.example/x")])
            assert "<p>café</p>" in page.text  # detected: valid UTF-8
        page = Page("http://a.example/", 200, header, b'<meta charset="iso-8859-1">' + body)
        assert (page.encoding, page.links()) == ("cp1252", [Link("http://a.example/x")])
        assert "<p>cafÃ©</p>" in page.text  # the header is passed over for the meta

    def test_nothing_is_parsed_until_asked(self, no_soup: None) -> None:
        page = make_page("category.html")
        assert page._text is None
        assert page._tree is None
        assert page._links is None
        assert page._soup is None

    def test_links_need_no_soup(self, no_soup: None) -> None:
        page = make_page("category.html", url="https://shop.example/books/")
        found = page.links()
        assert len(found) == 14
        assert page._soup is None
        assert page.links() is found  # cached

    def test_links_share_the_tree(self) -> None:
        page = make_page("category.html")
        tree = page.tree
        page.links()
        assert page.tree is tree

    def test_links_agree_with_extract_links(self) -> None:
        from crawler.parse.links import extract_links

        for name in ("article.html", "category.html", "frames.html", "latin1.html", "deep.html"):
            page = make_page(name)
            assert page.links() == extract_links(page.text, page.url), name

    def test_soup_is_built_on_first_access_and_cached(self) -> None:
        page = make_page("product.html")
        soup = page.soup
        assert isinstance(soup, bs4.BeautifulSoup)
        assert page.soup is soup
        assert soup.title is not None
        assert soup.title.string == "Studio Turntable T-900 | Demo shop"

    def test_tree_supports_xpath(self) -> None:
        page = make_page("product.html")
        assert page.tree.xpath("string(//span[@class='sku'])") == "MU-0900"

    def test_css_selects_text_attributes_and_elements(self, no_soup: None) -> None:
        page = make_page("product.html", url="https://shop.example/music/t900.html")
        assert page.css("h1::text").get() == "Studio Turntable T-900"
        assert page.css(".product .sku::text").getall() == ["MU-0900", "MU-0017"]
        assert page.css("div.featured img::attr(src)").get() == "/static/t900.jpg"
        names = page.css("div.product span.name")
        assert [" ".join(n.xpath("string()").get().split()) for n in names] == [
            "Studio Turntable T-900",
            "Record brush",
        ]
        assert page.css("div.featured").css(".price::text").get() == "$1,299.00"
        assert page.css(".no-such-class").get() is None
        assert page._soup is None  # selectors run on the lxml tree, not a soup

    def test_xpath_selects_with_variables(self) -> None:
        page = make_page("product.html")
        assert page.xpath("//span[@class=$cls]/text()", cls="sku").getall() == [
            "MU-0900",
            "MU-0017",
        ]
        assert page.xpath("string(//h1)").get() == "Studio Turntable T-900"

    def test_selectors_share_the_tree(self) -> None:
        page = make_page("product.html")
        tree = page.tree
        assert page.css("h1")[0].root is tree.find(".//h1")
        assert page.selector is page.selector

    def test_selectors_on_an_empty_body_find_nothing(self) -> None:
        page = Page("http://a.example/", 200, HTML, b"")
        assert page.css("a::attr(href)").getall() == []
        assert page.xpath("//title/text()").get() is None

    @pytest.mark.parametrize("body", [b"", b"   ", b"<!-- nothing -->"])
    def test_tree_of_an_empty_body_is_an_empty_document(self, body: bytes) -> None:
        page = Page("http://a.example/", 200, HTML, body)
        assert page.tree.tag == "html"
        assert page.tree.find("body") is not None
        assert page.links() == []

    def test_base_url_and_urljoin_follow_base_href(self) -> None:
        page = make_page("article.html", url="https://blog.example/2024/05/bread.html")
        assert page.base_url == "https://blog.example/articles/"
        assert page.urljoin("x#y") == "https://blog.example/articles/x"
        assert page.urljoin("mailto:a@b.example") is None
        plain = make_page("product.html", url="https://shop.example/music/t900.html")
        assert plain.base_url == "https://shop.example/music/t900.html"
        assert plain.urljoin("brush.html") == "https://shop.example/music/brush.html"

    def test_pickles_without_its_caches(self) -> None:
        page = make_page("article.html", depth=3, referrer="https://blog.example/")
        page.links()
        page.soup  # noqa: B018 - build every cache before pickling
        copy = pickle.loads(pickle.dumps(page))
        assert (copy.url, copy.status, copy.body) == (page.url, page.status, page.body)
        assert (copy.depth, copy.referrer) == (3, "https://blog.example/")
        assert copy.headers["content-type"] == "text/html"
        assert copy._tree is None
        assert copy.links() == page.links()

    def test_css_first_is_not_offered(self) -> None:
        # It needs cssselect, which is not a dependency; sites use XPath on tree.
        assert not hasattr(Page, "css_first")


class TestSite:
    def test_default_parse_yields_every_link(self, no_soup: None) -> None:
        page = make_page("category.html")
        assert list(Site().parse(page)) == page.links()
        assert Site.name == "base"

    @pytest.mark.parametrize("site", [Site(), GenericSite(), ShopSite()])
    def test_sites_pickle(self, site: Site) -> None:
        copy = pickle.loads(pickle.dumps(site))
        assert type(copy) is type(site)
        page = make_page("product.html")
        assert list(copy.parse(page)) == list(site.parse(page))


class TestLoadSite:
    def test_bare_names_come_from_sites(self) -> None:
        assert type(load_site("generic")) is GenericSite
        assert type(load_site("shop")) is ShopSite
        assert type(load_site("  shop  ")) is ShopSite

    def test_module_and_class(self) -> None:
        assert type(load_site("sites.shop:ShopSite")) is ShopSite
        assert type(load_site("sites.generic:GenericSite")) is GenericSite
        assert type(load_site("crawler.parse:Site")) is Site

    def test_loaded_sites_pickle(self) -> None:
        site = load_site("shop")
        assert type(pickle.loads(pickle.dumps(site))) is ShopSite

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("foo", "unknown site 'foo': tried foo.py in the working directory"),
            ("foo", "sites.foo in the bundled sites. Bundled sites: generic, shop"),
            ("sites.shop:Nope", "site 'sites.shop:Nope': module sites.shop has no Nope"),
            ("no_such_pkg.mod:Site", "tried no_such_pkg/mod.py in the working directory"),
            ("no_such_pkg.mod:Site", "no_such_pkg.mod in installed packages"),
            ("sites.shop:parse_price", "expected a subclass of crawler.parse.Site"),
            ("sites.shop:SITE", None),  # SITE is the class itself: fine
            ("crawler.models:Request", "expected a subclass of crawler.parse.Site"),
            ("sites.shop", None),  # a module with SITE
            ("", "site must be a name like 'generic' or 'module:Class'"),
            ("   ", "site must be a name like"),
            ("two words", "invalid site 'two words'"),
            ("sites.shop:", "expected a name like 'generic' or 'module:Class'"),
            (":ShopSite", "expected a name like"),
            ("a:b:c", "expected a name like"),
            ("../etc:X", "expected a name like"),
        ],
    )
    def test_bad_specs(self, spec: str, message: str | None) -> None:
        if message is None:
            assert type(load_site(spec)) is ShopSite
            return
        with pytest.raises(ValueError, match=re.escape(message)):
            load_site(spec)

    def test_non_string(self) -> None:
        with pytest.raises(ValueError, match="site must be a name"):
            load_site(None)  # type: ignore[arg-type]

    def test_module_without_site_attribute(self, monkeypatch: pytest.MonkeyPatch) -> None:
        one = types.ModuleType("sites.only_one")
        exec("from crawler.parse import Site\nclass Only(Site):\n    pass\n", one.__dict__)
        monkeypatch.setitem(sys.modules, "sites.only_one", one)
        assert type(load_site("only_one")).__name__ == "Only"

        none = types.ModuleType("sites.no_site")
        exec("from crawler.parse import Site\nclass Imported(Site):\n    pass\n", none.__dict__)
        none.Imported.__module__ = "elsewhere"
        monkeypatch.setitem(sys.modules, "sites.no_site", none)
        with pytest.raises(ValueError, match="no SITE attribute"):
            load_site("no_site")

    def test_site_attribute_that_is_not_a_class(self, monkeypatch: pytest.MonkeyPatch) -> None:
        module = types.ModuleType("sites.odd")
        module.SITE = "ShopSite"  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "sites.odd", module)
        with pytest.raises(
            ValueError, match=r"sites\.odd\.SITE is 'ShopSite', expected a subclass"
        ):
            load_site("odd")

    @pytest.mark.parametrize(
        ("source", "message"),
        [
            ("import no_such_dependency_xyz\n", "importing {mod} failed: No module named"),
            ("raise RuntimeError('boom at import')\n", "importing {mod} failed: RuntimeError"),
            ("def broken(:\n", "importing {mod} failed: SyntaxError"),
            (
                "from crawler.parse import Site\n"
                "class Needy(Site):\n"
                "    def __init__(self, required): ...\n",
                "could not create Needy()",
            ),
        ],
    )
    def test_failures_while_importing_or_creating(
        self,
        source: str,
        message: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest,
    ) -> None:
        module = f"tmp_site_{abs(hash(request.node.name))}"
        (tmp_path / f"{module}.py").write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path))
        with pytest.raises(ValueError, match=re.escape(message.format(mod=module))) as caught:
            load_site(f"{module}:Needy")
        assert caught.value.__cause__ is not None

    @pytest.mark.parametrize("spec", ["{mod}", "{mod}:Mine"])
    def test_a_module_beside_the_config_comes_first(
        self, spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        module = f"beside_{abs(hash(spec)) % 10**8}"
        near, cwd = tmp_path / "configs", tmp_path / "elsewhere"
        near.mkdir()
        cwd.mkdir()
        mine = "from crawler.parse import Site\nclass Mine(Site):\n    name = {!r}\n"
        (near / f"{module}.py").write_text(mine.format("beside"))
        (cwd / f"{module}.py").write_text(mine.format("cwd"))
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "path", list(sys.path))
        assert load_site(spec.format(mod=module), near=near).name == "beside"

    def test_then_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "here_site.py").write_text(
            "from crawler.parse import Site\nclass Here(Site):\n    name = 'here'\n"
        )
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "path", list(sys.path))
        assert load_site("here_site:Here", near=tmp_path / "no-such-folder").name == "here"

    def test_an_unknown_name_says_where_it_looked(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        near = tmp_path / "conf"
        with pytest.raises(ValueError, match="unknown site 'myshopp:MyShop'") as caught:
            load_site("myshopp:MyShop", near=near)
        message = str(caught.value)
        assert f"myshopp.py beside the config ({near})" in message
        assert f"myshopp.py in the working directory ({tmp_path})" in message
        assert "myshopp in installed packages" in message
        assert "Bundled sites: generic, shop" in message

    def test_crawler_never_imports_sites_statically(self) -> None:
        crawler_dir = Path(__file__).parent.parent / "crawler"
        pattern = re.compile(r"^\s*(from|import)\s+sites\b", re.MULTILINE)
        offenders = [
            str(path) for path in crawler_dir.rglob("*.py") if pattern.search(path.read_text())
        ]
        assert offenders == []


class TestGenericSite:
    def test_article(self, no_soup: None) -> None:
        page = make_page(
            "article.html",
            url="https://blog.example/2024/05/bread.html",
            depth=1,
            referrer="https://blog.example/",
        )
        results = list(GenericSite().parse(page))
        assert isinstance(results[0], Item)
        assert results[0] == {
            "url": "https://blog.example/2024/05/bread.html",
            "status": 200,
            "depth": 1,
            "referrer": "https://blog.example/",
            "fetched_at": None,
            "title": "Bread, Salt, Time — a baker's year",
            "description": "Forty years of mornings in a village bakery.",
            "canonical": "https://blog.example/articles/bread-salt-time",
            "lang": "en-GB",
            "h1": "Bread, Salt, Time",
            "text_length": 347,
            "links": 14,
            "structured": {
                "jsonld": [
                    {
                        "@context": "https://schema.org",
                        "@type": "Article",
                        "headline": "Bread, Salt, Time",
                        "author": {"@type": "Person", "name": "Ana Moreira"},
                    },
                    {
                        "@context": "https://schema.org",
                        "@type": "BreadcrumbList",
                        "itemListElement": [],
                    },
                    {
                        "@context": "https://schema.org",
                        "@type": "Organization",
                        "name": "Village Bakery",
                    },
                ],
                "opengraph": {
                    "og:title": "Bread, Salt, Time",
                    "og:type": "article",
                    "og:image": "https://blog.example/img/bread.jpg",
                },
            },
        }
        assert results[1:] == page.links()
        assert page._soup is None

    def test_item_has_exactly_the_documented_fields(self) -> None:
        (item,) = items(GenericSite().parse(make_page("category.html")))
        assert list(item) == [
            "url",
            "status",
            "depth",
            "referrer",
            "fetched_at",
            "title",
            "description",
            "canonical",
            "lang",
            "h1",
            "text_length",
            "links",
            "structured",
        ]
        assert item["structured"] == {
            "opengraph": {
                "og:type": "website",
                "og:title": "Books at Demo shop",
                "og:url": "https://shop.example/books/",
                "og:image": "https://shop.example/static/books.jpg",
                "og:description": "Every book we sell, sorted by how often people buy it.",
            }
        }
        assert item["links"] == 14

    def test_visible_text_length(self) -> None:
        html = (
            "<html><head><title>Not counted</title><style>p { }</style></head><body>"
            "<p>a \n\t b</p><script>var hidden = 1;</script>c<!-- not shown -->d"
            "<style>.x{}</style><li>e</li><li>f</li></body></html>"
        )
        page = Page("http://a.example/", 200, HTML, html.encode())
        (item,) = items(GenericSite().parse(page))
        assert item["text_length"] == len("a b c d e f")

    @pytest.mark.parametrize(
        "body",
        [
            "<p>one two</p><script>a b c</script><p>three</p>",
            "<script>x</script>",  # nothing visible
            "<style>s t</style>lead<script>one<!-- c -->two</script>tail words",
            "<p>x\u00a0y</p><noscript>shown</noscript><style> </style><script></script>",
            "<div><script>k</script><p>a</p><style>q r</style></div> <template>t</template>",
            "",
        ],
    )
    def test_visible_text_length_counts_what_renders(self, body: str) -> None:
        """Scripts' and styles' words are counted apart and taken away: the length must
        be what joining only the rendered text nodes gives."""
        page = Page("http://a.example/", 200, HTML, f"<html><body>{body}</body></html>".encode())
        (item,) = items(GenericSite().parse(page))
        rendered = page.tree.xpath("./body[1]//text()[not(parent::script or parent::style)]")
        assert item["text_length"] == len(" ".join(" ".join(rendered).split()))

    def test_missing_everything(self) -> None:
        page = Page("http://a.example/", 200, HTML, b"<p>plain</p>")
        (item,) = items(GenericSite().parse(page))
        assert item["title"] is None
        assert item["description"] is None
        assert item["canonical"] is None
        assert item["lang"] is None
        assert item["h1"] is None
        assert item["text_length"] == len("plain")
        assert item["links"] == 0
        assert item["structured"] == {}

    def test_jsonld_only_and_invalid_skipped(self) -> None:
        html = (
            '<script type="application/ld+json">{"@type": "Thing"}</script>'
            '<script type="Application/LD+JSON; charset=utf-8">{"@type": "Other"}</script>'
            '<script type="application/ld+json">{nope</script>'
            '<script type="application/ld+json">' + "[" * 100_000 + "</script>"
            '<script type="application/ld+json">"just a string"</script>'
            '<script type="application/ld+json"></script>'
            '<script type="application/json">{"@type": "NotLd"}</script>'
        )
        page = Page("http://a.example/", 200, HTML, html.encode())
        (item,) = items(GenericSite().parse(page))
        assert item["structured"] == {"jsonld": [{"@type": "Thing"}, {"@type": "Other"}]}

    def test_canonical_without_href_and_relative_canonical(self) -> None:
        html = '<link rel="alternate canonical" href="../canon?a=1#x"><link rel=canonical>'
        page = Page("http://a.example/dir/sub/page", 200, HTML, html.encode())
        (item,) = items(GenericSite().parse(page))
        assert item["canonical"] == "http://a.example/dir/canon?a=1"

    def test_latin1_page(self) -> None:
        (item,) = items(GenericSite().parse(make_page("latin1.html")))
        assert item["title"] == "Café crème | La Brasserie"
        assert item["h1"] == "Le café du matin"
        assert item["lang"] == "fr"

    def test_frameset_page(self) -> None:
        results = list(GenericSite().parse(make_page("frames.html", url="http://docs.example/")))
        assert results[0]["title"] == "Manual"  # type: ignore[index]
        assert results[0]["links"] == 2  # type: ignore[index]
        assert len(links(results)) == 2

    def test_deeply_nested_page(self) -> None:
        page = make_page("deep.html", url="https://forum.example/t/7781")
        results = list(GenericSite().parse(page))
        item = results[0]
        assert isinstance(item, Item)
        assert item["title"] == "Thread 7781 — Forum"
        assert item["links"] >= 4
        assert Link("https://forum.example/after", nofollow=True) in results
        page.soup  # noqa: B018 - a soup of it must not crash either

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"\x00\xff\xfe\x00",
            b"<html",
            b"<title>",
            b"<html lang><head><meta><meta name=description><link rel=canonical href></head>",
            b"<script type='application/ld+json'>",
            b"<h1></h1><h1>second</h1>",
            b"<?xml version='1.0' encoding='utf-16'?><html><body>x</body></html>",
            "<p>\ud800</p>".encode("utf-8", "surrogatepass"),
        ],
    )
    def test_never_raises(self, body: bytes) -> None:
        page = Page("http://a.example/", 200, HTML, body)
        (item,) = items(GenericSite().parse(page))
        assert item["url"] == "http://a.example/"


DEMO_PRODUCT = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Books item 3</title></head>"
    "<body><nav><a href='/'>Home</a></nav><h1>Books item 3</h1>"
    "<div class='product'><span class='name'>Books item 3</span>"
    "<span class='sku'>BO-0003</span><span class='price'>12.99</span></div>"
    "<a href='/books/'>Back to books</a></body></html>"
)


class TestShopSite:
    def test_demo_site_product_page(self) -> None:
        page = Page("http://127.0.0.1:8000/books/3.html", 200, HTML, DEMO_PRODUCT.encode())
        results = list(ShopSite().parse(page))
        assert results == [
            Item(
                url="http://127.0.0.1:8000/books/3.html",
                name="Books item 3",
                sku="BO-0003",
                price=12.99,
            ),
            Link("http://127.0.0.1:8000/"),
            Link("http://127.0.0.1:8000/books/"),
        ]

    def test_saved_product_page(self, no_soup: None) -> None:
        page = make_page("product.html", url="https://shop.example/music/t900.html")
        results = list(ShopSite().parse(page))
        assert items(results) == [
            {
                "url": "https://shop.example/music/t900.html",
                "name": "Studio Turntable T-900",
                "sku": "MU-0900",
                "price": 1299.0,
            },
            {
                "url": "https://shop.example/music/t900.html",
                "name": "Record brush",
                "sku": "MU-0017",
                "price": None,
            },
        ]
        assert links(results) == page.links()
        assert Link("https://shop.example/cart/add?sku=MU-0900", nofollow=True) in results

    def test_category_page_yields_only_links(self) -> None:
        page = make_page("category.html", url="https://shop.example/books/")
        results = list(ShopSite().parse(page))
        assert items(results) == []
        assert results == page.links()

    def test_missing_fields_are_none(self) -> None:
        html = b"<div class='x product'><span class='price'>EUR 5</span></div>"
        page = Page("http://a.example/p", 200, HTML, html)
        assert items(ShopSite().parse(page)) == [
            {"url": "http://a.example/p", "name": None, "sku": None, "price": 5.0}
        ]

    def test_class_is_matched_as_a_token(self) -> None:
        html = b"<div class='product-list'><span class='name'>Not a product</span></div>"
        page = Page("http://a.example/p", 200, HTML, html)
        assert items(ShopSite().parse(page)) == []

    @pytest.mark.parametrize(
        ("text", "price"),
        [
            ("12.99", 12.99),
            ("$1,299.00", 1299.0),
            ("  £ 7.50 incl. VAT", 7.5),
            ("1.299,00 €", 1299.0),
            ("12,99 €", 12.99),
            ("1,299", 1299.0),
            ("CHF 1'299.50", 1299.5),
            ("1 299,00 €", 1299.0),
            ("1\u00a0299", 1299.0),
            ("USD 1,234,567.89", 1234567.89),
            ("$12.99 $15.99", 12.99),
            ("from 12.99 to 15.99", 12.99),
            ("9" * 400, None),
            ("call us", None),
            ("", None),
            (None, None),
        ],
    )
    def test_parse_price(self, text: str | None, price: float | None) -> None:
        assert parse_price(text) == price
