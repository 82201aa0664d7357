"""Link extraction: sources, resolution, filtering, nofollow, and pages that try to break it."""

from __future__ import annotations

import dataclasses
import random
from html import escape
from pathlib import Path

import lxml.html
import pytest
from lxml import etree

from crawler.parse.links import Link, extract_links, resolve_url
from crawler.parse.tree import parse_html

PAGES = Path(__file__).parent / "pages"


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def urls(body: bytes | str, base: str = "http://a.example/dir/index.html") -> list[str]:
    return [link.url for link in extract_links(body, base)]


def test_article_page_all_rules_at_once() -> None:
    links = extract_links(page("article.html"), "https://blog.example/2024/05/bread.html")
    assert links == [
        # <meta refresh> in the head, resolved against the <base> that follows it.
        Link("https://blog.example/articles/bread-salt-time?fresh=1"),
        Link("https://blog.example/articles/bread-salt-time/comments"),
        # Also linked later with rel=nofollow: one followed link is enough.
        Link("https://blog.example/about"),
        Link("https://blog.example/tags/baking/"),
        Link("https://other.example/path?q=1"),
        Link("https://cdn.example/files/recipe.pdf"),
        Link("https://blog.example/articles/?page=2"),
        Link("https://blog.example/sponsor", nofollow=True),
        Link("https://blog.example/partner"),
        Link("https://blog.example/ugc", nofollow=True),
        Link("https://blog.example/login", nofollow=True),
        Link("https://blog.example/map/north"),
        Link("https://blog.example/map/south", nofollow=True),
        Link("https://video.example/embed/42"),
    ]


def test_nothing_from_scripts_styles_or_comments() -> None:
    found = urls(page("article.html"), "https://blog.example/2024/05/bread.html")
    assert not [url for url in found if "in-script" in url or "in-style" in url]
    assert not [url for url in found if "commented-out" in url]


def test_category_page() -> None:
    links = extract_links(page("category.html"), "https://shop.example/books/")
    assert len(links) == 14  # 16 <a>: one mailto, one repeated "?page=2"
    assert links[0] == Link("https://shop.example/")
    assert Link("https://shop.example/cart", nofollow=True) in links
    assert Link("https://twitter.example/demoshop", nofollow=True) in links
    assert Link("https://shop.example/books/?page=2") in links


def test_frameset_page() -> None:
    assert urls(page("frames.html"), "http://docs.example/manual/index.html") == [
        "http://docs.example/manual/toc.html",
        "https://docs.example/manual/intro.html",
    ]


@pytest.mark.parametrize(
    ("href", "base", "expected"),
    [
        ("page2.html", "http://a.example/dir/index.html", "http://a.example/dir/page2.html"),
        ("/root", "http://a.example/dir/index.html", "http://a.example/root"),
        ("../up/", "http://a.example/dir/index.html", "http://a.example/up/"),
        ("./same", "http://a.example/dir/", "http://a.example/dir/same"),
        ("?q=1", "http://a.example/dir/index.html", "http://a.example/dir/index.html?q=1"),
        ("//cdn.example/x.js", "https://a.example/", "https://cdn.example/x.js"),
        ("//cdn.example/x.js", "http://a.example/", "http://cdn.example/x.js"),
        ("https://b.example/p?x=1", "http://a.example/", "https://b.example/p?x=1"),
        ("HTTPS://B.EXAMPLE/Path", "http://a.example/", "https://b.example/Path"),
        ("/page#section", "http://a.example/", "http://a.example/page"),
        ("https://b.example/#", "http://a.example/", "https://b.example/"),
        ("  /padded \n ", "http://a.example/", "http://a.example/padded"),
        ("/split\n/path", "http://a.example/", "http://a.example/split/path"),
        ("/café?plat=crème", "http://a.example/", "http://a.example/caf%C3%A9?plat=cr%C3%A8me"),
        ("/a b", "http://a.example/", "http://a.example/a%20b"),
        ("\\\\b.example\\x", "http://a.example/", "http://b.example/x"),
        ("x", "http://a.example/dir/index.html#frag", "http://a.example/dir/x"),
        ("?p=2", "http://a.example/list#frag", "http://a.example/list?p=2"),
    ],
)
def test_resolution(href: str, base: str, expected: str) -> None:
    assert urls(f'<a href="{href}">x</a>', base) == [expected]


@pytest.mark.parametrize(
    "href",
    [
        "",
        "   ",
        "#top",
        "javascript:void(0)",
        "JavaScript:alert(1)",
        "java\nscript:alert(1)",
        "mailto:someone@a.example",
        "tel:+15551234",
        "data:text/html,hi",
        "ftp://files.a.example/x",
        "about:blank",
        "http://a.example:99999/",
        "http://a.example:port/",
        "http://[::1/",
        "http:///no-host",
        "http://bad host.example/",
    ],
)
def test_dropped(href: str) -> None:
    assert urls(f'<a href="{href}">x</a><a href="/kept">k</a>') == ["http://a.example/kept"]


def test_missing_href_and_src() -> None:
    assert urls("<a>x</a><area><frame><iframe></iframe><a name=top></a>") == []


def test_every_source_tag() -> None:
    html = """<html><head><meta http-equiv="refresh" content="0; url=/refresh"></head><body>
      <a href="/a">a</a><map><area href="/area"></map><iframe src="/iframe"></iframe>
      <frame src="/frame"><link href="/not-a-source"><img src="/not-a-source-either">
    </body></html>"""
    assert urls(html, "http://a.example/") == [
        "http://a.example/refresh",
        "http://a.example/a",
        "http://a.example/area",
        "http://a.example/iframe",
        "http://a.example/frame",
    ]


class TestBase:
    def test_relative_base_resolves_against_the_page(self) -> None:
        html = '<head><base href="../other/"></head><a href="x">x</a>'
        assert urls(html, "http://a.example/dir/sub/page.html") == ["http://a.example/dir/other/x"]

    def test_absolute_base_on_another_host(self) -> None:
        html = '<base href="https://mirror.example/root/"><a href="x">x</a><a href="/y">y</a>'
        assert urls(html) == ["https://mirror.example/root/x", "https://mirror.example/y"]

    def test_first_base_wins_even_after_the_links(self) -> None:
        html = '<a href="x">x</a><base href="/first/"><base href="/second/">'
        assert urls(html) == ["http://a.example/first/x"]

    @pytest.mark.parametrize("base", ["javascript:x", "", "http://bad:port/", "mailto:a@b"])
    def test_unusable_base_falls_back_to_the_page(self, base: str) -> None:
        assert urls(f'<base href="{base}"><a href="x">x</a>') == ["http://a.example/dir/x"]

    def test_base_without_href_is_ignored(self) -> None:
        assert urls('<base target="_top"><base href="/b/"><a href="x">x</a>') == [
            "http://a.example/b/x"
        ]

    def test_page_url_that_does_not_parse_keeps_absolute_links_only(self) -> None:
        html = '<a href="/relative">r</a><a href="http://b.example/abs">a</a>'
        assert urls(html, "not a url") == ["http://b.example/abs"]
        assert urls(html, "http://[broken") == ["http://b.example/abs"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("5; url=/next", "http://a.example/next"),
        ("0;URL='/quoted'", "http://a.example/quoted"),
        ('3, url="/double"', "http://a.example/double"),
        ("  7 ; Url = /spaced ", "http://a.example/spaced"),
        ("5;/bare", "http://a.example/bare"),
        ("0.5; url=https://b.example/x#y", "https://b.example/x"),
        ("5", None),
        ("5x; url=/not-a-time", None),
        ("5 /space-separated", "http://a.example/space-separated"),
        ("url=/no-time", None),
        ("", None),
        ("0; url=javascript:alert(1)", None),
    ],
)
def test_meta_refresh(content: str, expected: str | None) -> None:
    html = f'<meta http-equiv="REFRESH" content="{escape(content)}">'
    assert urls(html, "http://a.example/") == ([expected] if expected else [])


def test_meta_refresh_needs_http_equiv() -> None:
    assert urls('<meta name="refresh" content="0; url=/x">') == []


@pytest.mark.parametrize(
    ("rel", "nofollow"),
    [
        ("nofollow", True),
        ("NoFollow", True),
        ("noopener nofollow noreferrer", True),
        ("\tnofollow\n", True),
        ("sponsored  ugc nofollow", True),
        ("nofollowing", False),
        ("no-follow", False),
        ("follow", False),
        ("", False),
        ("external", False),
    ],
)
def test_rel_nofollow_tokens(rel: str, nofollow: bool) -> None:
    for tag in ('<a href="/x" rel="{}">x</a>', '<map><area href="/x" rel="{}"></map>'):
        assert extract_links(tag.format(rel), "http://a.example/") == [
            Link("http://a.example/x", nofollow=nofollow)
        ]


@pytest.mark.parametrize(
    ("content", "nofollow"),
    [
        ("nofollow", True),
        ("noindex, nofollow", True),
        ("NOINDEX,NOFOLLOW", True),
        ("none", True),
        ("None", True),
        ("noindex", False),
        ("index, follow", False),
        ("all", False),
        ("", False),
    ],
)
def test_meta_robots(content: str, nofollow: bool) -> None:
    # The meta comes after the links on purpose: it applies to the whole page.
    html = (
        '<body><a href="/a">a</a><iframe src="/f"></iframe>'
        f'<meta name="Robots" content="{content}"></body>'
    )
    assert extract_links(html, "http://a.example/") == [
        Link("http://a.example/a", nofollow=nofollow),
        Link("http://a.example/f", nofollow=nofollow),
    ]


def test_meta_robots_for_another_name_is_ignored() -> None:
    html = '<meta name="description" content="nofollow"><a href="/a">a</a>'
    assert extract_links(html, "http://a.example/") == [Link("http://a.example/a")]


class TestDuplicates:
    def test_listed_once_at_first_position(self) -> None:
        html = '<a href="/a">1</a><a href="/b">2</a><a href="/a#top">3</a><a href="a">4</a>'
        assert urls(html, "http://a.example/") == ["http://a.example/a", "http://a.example/b"]

    def test_nofollow_only_when_every_occurrence_is(self) -> None:
        html = (
            '<a href="/mixed" rel="nofollow">1</a><a href="/mixed">2</a>'
            '<a href="/never" rel="nofollow">3</a><a href="/never" rel="nofollow">4</a>'
        )
        assert extract_links(html, "http://a.example/") == [
            Link("http://a.example/mixed", nofollow=False),
            Link("http://a.example/never", nofollow=True),
        ]


class TestEncodings:
    def test_latin1_bytes_follow_the_meta_charset(self) -> None:
        assert urls(page("latin1.html"), "http://latin.example/") == [
            "http://latin.example/caf%C3%A9.html",
            "http://latin.example/menu?plat=cr%C3%A8me",
        ]

    def test_undeclared_utf8_bytes_are_read_as_utf8(self) -> None:
        body = '<a href="/café">x</a>'.encode()
        assert urls(body, "http://a.example/") == ["http://a.example/caf%C3%A9"]

    def test_utf16_bytes_with_bom(self) -> None:
        body = '<html><body><a href="/café">x</a></body></html>'.encode("utf-16")
        assert urls(body, "http://a.example/") == ["http://a.example/caf%C3%A9"]

    def test_str_with_xml_declaration(self) -> None:
        # lxml raises ValueError for such a str when handed it directly.
        html = (
            '<?xml version="1.0" encoding="utf-8"?>\n<html><body><a href="/x">x</a></body></html>'
        )
        assert urls(html, "http://a.example/") == ["http://a.example/x"]

    def test_str_ignores_a_contradicting_meta_charset(self) -> None:
        html = '<meta charset="iso-8859-1"><a href="/café">x</a>'
        assert urls(html, "http://a.example/") == ["http://a.example/caf%C3%A9"]

    def test_str_with_lone_surrogate(self) -> None:
        assert urls('<a href="/ok">\ud800</a>', "http://a.example/") == ["http://a.example/ok"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        "",
        b"   \n\t",
        "   ",
        b"\x00",
        b"\x00\x00\xff\xfe",
        "<!-- only a comment -->",
        "<",
        "<a",
    ],
)
def test_empty_and_degenerate_bodies(body: bytes | str) -> None:
    assert extract_links(body, "http://a.example/") == []


def test_ten_thousand_nested_divs() -> None:
    # libxml2 stops at 2048 levels; the tokenizer fallback still sees the links
    # inside and after the nest.
    links = extract_links(page("deep.html"), "https://forum.example/t/7781")
    found = [link.url for link in links]
    assert found[:4] == [
        "https://forum.example/before",
        "https://forum.example/inside-broken",
        "https://forum.example/deepest",
        "https://forum.example/after",
    ]
    assert links[3].nofollow


def test_parse_html_reports_a_cut_tree() -> None:
    root, complete = parse_html(page("deep.html"))
    assert root is not None
    assert not complete
    root, complete = parse_html(page("category.html"))
    assert complete
    assert parse_html(b"") == (None, True)


class TestAfterTheEndOfHtml:
    """HTML reads what follows ``</html>`` into the body; libxml2 2.14 leaves it outside
    the tree, beside the root, where neither the tree nor the link walk looks."""

    def test_links_after_html_are_found_in_order(self) -> None:
        body = (
            b"<html><head><title>t</title></head><body><a href=/in>in</a></body></html>\n"
            b"<p>appended <a href=/after>x</a></p> tail <a href=/last>"
        )
        assert urls(body, "http://a.example/") == [
            "http://a.example/in",
            "http://a.example/after",
            "http://a.example/last",
        ]
        assert urls(body.decode(), "http://a.example/") == urls(body, "http://a.example/")

    def test_the_tree_holds_it_in_the_body(self) -> None:
        root, complete = parse_html(
            "<html><body><p>a</p></body></html><!--c-->text<body class=c><a href=/y>y</a>"
            "</html><head><base href='http://b.example/'></head><a href=q>"
        )
        assert complete
        assert [node.tag for node in root.itersiblings()] == [etree.Comment]  # stays there
        (body,) = root.findall("body")
        assert body.get("class") == "c"  # a repeated <body> adds its attributes
        assert [child.tag for child in body] == ["p", "a", "base", "a"]
        assert body.xpath("string()") == "atexty"
        # A <base> after </html> still counts, as in browsers: it is in the body.
        assert urls(etree.tostring(root), "http://a.example/") == [
            "http://b.example/y",
            "http://b.example/q",
        ]

    def test_a_document_without_a_body_gets_one(self) -> None:
        root, _ = parse_html(
            b"<html lang=en><head><title>t</title></head></html><html lang=x dir=rtl><a href=/z>"
        )
        assert [child.tag for child in root] == ["head", "body"]
        assert dict(root.attrib) == {"lang": "en", "dir": "rtl"}  # the first one's win
        assert urls(etree.tostring(root), "http://a.example/") == ["http://a.example/z"]

    @pytest.mark.parametrize(
        "ending",
        [b"</html>", b"</html>\n", b"</HTML>\r\n\t ", b"</html>\n<!-- cached 2024-06-01 -->\n"],
    )
    def test_nothing_after_html_leaves_the_tree_alone(self, ending: bytes) -> None:
        root, complete = parse_html(b"<html><body><a href=/a>a</a></body>" + ending)
        assert complete
        assert etree.tostring(root) == b'<html><body><a href="/a">a</a></body></html>'
        assert root.getnext() is None or root.getnext().tag is etree.Comment

    def test_html_end_tags_in_comments_scripts_and_text_are_not_ends(self) -> None:
        body = (
            b"<script>var s = '</html>';</script><!-- </html> -->"
            b"<textarea></html></textarea><a href=/a>a</a>"
        )
        root, _ = parse_html(body)
        assert root.xpath("string(//script)") == "var s = '</html>';"
        assert root.xpath("string(//textarea)") == "</html>"
        assert urls(body, "http://a.example/") == ["http://a.example/a"]


def test_huge_flat_page() -> None:
    links = "".join(f'<p><a href="/p{i}">{"x" * 100}</a></p>' for i in range(20_000))
    found = urls(f"<html><body>{links}</body></html>".encode(), "http://a.example/")
    assert len(found) == 20_000
    assert found[-1] == "http://a.example/p19999"


def test_random_garbage_never_raises() -> None:
    rng = random.Random(20240501)
    fragments = [
        "<a href='",
        "<a href=/x>",
        "</a>",
        "<base href='",
        "<meta http-equiv=refresh content='0;url=",
        "<meta name=robots content=nofollow>",
        "<iframe src=",
        "<!--",
        "-->",
        "<![CDATA[",
        "<script>",
        "</script>",
        "&#x110000;",
        "&",
        "'",
        '"',
        "<",
        ">",
        "\x00",
        "\ud800",
        "http://[",
        ":99999",
        "#",
        "javascript:",
        "é",
        "<?xml version='1.0' encoding='latin-1'?>",
    ]
    for _ in range(300):
        text = "".join(rng.choice(fragments) for _ in range(rng.randint(0, 40)))
        for body in (
            text,
            text.encode("utf-8", "replace"),
            bytes(rng.randrange(256) for _ in range(64)),
        ):
            for link in extract_links(body, "http://a.example/"):
                assert link.url.startswith(("http://", "https://"))
                assert "#" not in link.url


def test_resolve_url_directly() -> None:
    assert resolve_url("/x#y", "http://a.example/dir/") == "http://a.example/x"
    assert resolve_url("x", None) is None
    assert resolve_url("http://b.example/", None) == "http://b.example/"
    assert resolve_url(None, "http://a.example/") is None


def test_link_is_a_frozen_hashable_value() -> None:
    link = Link("http://a.example/")
    assert link.nofollow is False
    assert {link, Link("http://a.example/")} == {link}
    with pytest.raises(dataclasses.FrozenInstanceError):
        link.url = "http://b.example/"  # type: ignore[misc]


_SEGMENTS = ["123.html", "p", "item-7_b.html", ".", "..", ".hidden", "..x", "~user", "a.b.c", "", "x:y",
             "%41", "é", "a b", "q?x=1", "f#top", "\\", "UPPER", "-", "_"]  # fmt: skip
_PREFIXES = ["", "", "", "/", "//", "///", "./", "../", "/../", "http://b.test/", "HTTPS://B.test:443/",
             "//b.test/", "//b.test:80/", "http:", "?", "?a=1&", "#", " ", "\\", "/\\", "\t/",
             # the bases' own origins, in their own and in other spellings
             "http://a.test/", "//a.test/", "http://a.test:80/", "HTTP://a.test/", "http://a.test",
             "https://a.test:8443/", "//A.test:8443/", "http://[::1]:8080/", "//[::1]:8080/",
             "http://user:pw@a.test/", "//user:pw@a.test/", "../../", "./../",
             # other origins, plain and not
             "http://b.test:8080/", "https://b.test/", "http://b.test:80/", "https://b.test:443/",
             "//b.test:8080/", "http://b.test:99999/", "http://b.test:0/", "http://999.1.1.1/",
             "http://xn--bcher-kva.test/", "http://xn--zz.test/", "http://-b.test/",
             "http://" + "b" * 63 + "." + "c" * 64 + "/", "http://b.test./", "http://B.test/",
             "../../../", "./././", ".././", "...//", "a/../", "./x/./"]  # fmt: skip
_BASES = [
    "http://a.test/", "http://a.test/p/1.html", "http://a.test/p/", "http://a.test/p/1.html?x=1&y",
    "https://A.test:8443/deep/er/page", "http://a.test", "http://a.test/%C3%A9/x.html",
    "http://user:pw@a.test/p/q", "http://[::1]:8080/p/1.html", "http://a.test/p;x/1.html",
    "http://a.test/deep/er/est/page.html", "http://a.test/p/?q=/x/y", "http://a.test?q=/x",
    "http://a.test/p//q/", "http://a.test/a%2Fb/c", "HTTP://A.TEST:80/Up/Case/",
]  # fmt: skip


def test_links_join_as_resolve_url_joins_them_on_every_path() -> None:
    """Pages resolve links through a memo shared by pages of one origin: a page's links
    must be exactly what resolve_url makes of each href, whatever pages came before
    ("//" with no host and a backslash depend on the base's path, not its origin)."""
    rng = random.Random(18)
    hrefs = {rng.choice(_PREFIXES) + "/".join(rng.choice(_SEGMENTS) for _ in range(rng.randrange(1, 4)))
             for _ in range(6000)} | {s + "/" for s in _SEGMENTS} | set(_PREFIXES)  # fmt: skip
    for base in _BASES:
        body = "".join(f'<a href="{escape(href)}">x</a>' for href in sorted(hrefs))
        found = [link.url for link in extract_links(f"<html><body>{body}</body></html>", base)]
        expected = list(dict.fromkeys(
            url for href in sorted(hrefs) if (url := resolve_url(href, base)) is not None
        ))  # fmt: skip
        assert found == expected, base


def test_the_tree_has_the_element_classes_of_lxml_html() -> None:
    """The parser picks element classes by a table in C, not lxml.html's Python lookup:
    sites rely on getting the same classes (``text_content()``, ``FormElement.fields``)."""
    markup = (b"<!DOCTYPE html><html><head><title>t</title><!-- c --></head><body>"
              b"<form action=/x><label>L</label><input name=a><select><option>1</select>"
              b"<textarea>t</textarea></form><FORM></FORM><p>&amp;&nbsp;&unknown;</p>"
              b"<svg><circle/></svg><math><mi>x</mi></math><table><td>c</table></body></html>")  # fmt: skip
    root, _ = parse_html(markup)
    reference = lxml.html.document_fromstring(markup, parser=lxml.html.HTMLParser(encoding="utf-8"))
    ours = [(node.tag, type(node)) for node in root.getroottree().iter()]
    assert ours == [(node.tag, type(node)) for node in reference.getroottree().iter()]
    assert {lxml.html.FormElement, lxml.html.InputElement, lxml.html.HtmlComment} <= {
        kind for _, kind in ours
    }


def test_the_memos_of_a_crawl_of_many_sites_stay_bounded() -> None:
    """Answers are remembered per origin: a parse process that sees many sites must
    still hold at most the stated number of them, and of Links."""
    from crawler.parse import links, resolve

    for site in range(20):
        body = "".join(f'<a href="/p/{i}.html">x</a><a href="http://s{site}.test/q/{i}">y</a>'
                       for i in range(3000))  # fmt: skip
        found = extract_links(f"<html><body>{body}</body></html>", f"http://s{site}.test/")
        assert len(found) == 6000
    for folder in range(resolve._RESOLVED_MAX + 100):  # pages in as many folders
        page = f"http://s.test/f{folder}/page.html"
        found = extract_links('<a href="../x.html">x</a><a href="y.html">y</a>', page)
        assert [link.url for link in found] == ["http://s.test/x.html", page[:-9] + "y.html"]
    assert len(resolve._resolved) <= resolve._CONTEXTS_MAX
    assert all(len(memo) <= resolve._RESOLVED_MAX for memo in resolve._resolved.values())
    assert len(links._links) <= links._LINKS_MAX
    assert len(resolve._folders) <= resolve._RESOLVED_MAX
