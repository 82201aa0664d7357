"""URL canonicalisation: the frontier's dedup key."""

from __future__ import annotations

import random

import pytest

from crawler.urls import _canonicalize, canonicalize, fingerprint

SAME_PAGE = [
    ("http://a.com", "http://a.com/"),
    ("HTTP://A.com/x", "http://a.com/x"),
    ("http://a.com:80/x", "http://a.com/x"),
    ("https://a.com:443/x", "https://a.com/x"),
    ("http://a.com/a/./b", "http://a.com/a/b"),
    ("http://a.com/a/../b", "http://a.com/b"),
    ("http://a.com/%7Efoo", "http://a.com/~foo"),
    ("http://a.com/x#top", "http://a.com/x"),
    ("http://a.com/x?b=2&a=1", "http://a.com/x?a=1&b=2"),
]


@pytest.mark.parametrize(("url", "canonical"), SAME_PAGE)
def test_spellings_of_one_page_share_a_canonical_form(url: str, canonical: str) -> None:
    assert canonicalize(url) == canonical
    assert fingerprint(url) == fingerprint(canonical)


def test_distinct_pages_stay_distinct() -> None:
    urls = ["http://a.com/A", "http://a.com/a", "http://a.com:8080/a", "https://a.com/a",
            "http://a.com/a?x=1", "http://a.com/a/"]  # fmt: skip
    assert len({fingerprint(url) for url in urls}) == len(urls)


@pytest.mark.parametrize("url", ["http://a.com:65536/x", "http://a.com:-1/", "http://[::1/x",
                                 "http://a.com/\ud800", " http://a.com:99999/ "])  # fmt: skip
def test_an_unusable_url_is_returned_as_is_not_refused(url: str) -> None:
    """Refusing is the scope's job (``invalid_url``); the dedup key must never raise."""
    assert canonicalize(url) == url.strip()
    assert len(fingerprint(url)) == 16


def _random_url(rng: random.Random) -> str:
    scheme = rng.choice(["http", "https", "HTTP"])
    host = ".".join(rng.choice(["a", "B", "x-y", "127", "0", "xn--bcher-kva", "ü", "a" * 64])
                    for _ in range(rng.randint(1, 3)))  # fmt: skip
    port = rng.choice(["", "", ":80", ":443", ":8080", ":65535", ":65536", ":08", ":0"])
    segments = ["a", "B.html", ".", "..", ".x", "~", "%7E", "%41", "é", "a b", ";p=1", "", "-_"]
    path = "".join("/" + rng.choice(segments) for _ in range(rng.randint(0, 4)))
    tail = rng.choice(["", "", "?b=1&a=2", "#f", "?"])
    return f"{scheme}://{host}{port}{path}{tail}"


def test_the_fast_path_agrees_with_the_full_canonicalisation() -> None:
    rng = random.Random(20261125)
    fast_paths = 0
    for _ in range(20_000):
        url = _random_url(rng)
        try:
            expected = _canonicalize(url)
        except ValueError:
            expected = url.strip()  # canonicalize never raises: an unusable URL comes back as is
        got = canonicalize(url)
        assert got == expected, url
        fast_paths += got == url
    assert fast_paths > 300  # the fast path was taken, not only the full one
