"""Which discovered URLs a crawl may visit, and why the others are dropped."""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

from crawler.config import CrawlSettings
from crawler.urls import is_http_url, usual_host_and_path

__all__ = ["Scope"]

HOST_VERDICTS = 4096  # hosts whose verdict is remembered; forgotten all at once past it
URL_VERDICTS = 8192  # the same for URLs


class Scope:
    """Decides per URL: ``None`` to visit it, or the reason to drop it
    (``invalid_url``, ``offsite``, ``depth``, ``trap``, ``excluded``);
    ``invalid_url`` is anything ``is_http_url`` refuses, so no engine ever gets
    a URL it would reject (relative or non-http(s) ones included). The answer
    depends on the URL and depth alone (the caches of hosts and URLs only remember
    answers), so parse threads and processes can share a Scope."""

    def __init__(self, settings: CrawlSettings) -> None:
        self.settings = settings
        domains = settings.allowed_domains or tuple(
            (urlsplit(url).hostname or "").lower() for url in settings.start_urls
        )
        self.domains = frozenset(_ascii_host(d) for d in domains if d)
        self._hosts: dict[str, bool] = {}  # verdicts: every page links the same few hosts
        self._verdicts: dict[str, tuple[str | None, str | None]] = {}

    def allows_host(self, host: str) -> bool:
        allowed = self._hosts.get(host)
        if allowed is None:
            ascii_host = _ascii_host(host)
            # A name also allows its subdomains: shop.example.org under example.org.
            allowed = ascii_host in self.domains or any(
                ascii_host.endswith("." + domain) for domain in self.domains
            )
            if len(self._hosts) >= HOST_VERDICTS:
                self._hosts.clear()
            self._hosts[host] = allowed
        return allowed

    def drop_reason(self, url: str, depth: int) -> str | None:
        verdict = self._verdicts.get(url)
        if verdict is None:
            verdict = self._verdict(url)
            if len(self._verdicts) >= URL_VERDICTS:
                self._verdicts.clear()
            self._verdicts[url] = verdict
        before_depth, after_depth = verdict
        if before_depth is not None:
            return before_depth
        return "depth" if depth > self.settings.max_depth else after_depth

    def _verdict(self, url: str) -> tuple[str | None, str | None]:
        """The reasons to drop ``url`` checked before its depth and after it: a page's
        menus link the same URLs on every page, and only the depth differs."""
        usual = usual_host_and_path(url)  # most links: no parse
        if usual is not None:
            return self._reasons(url, *usual)
        # What the engines insist on: canonicalize never refuses, so a port over
        # 65535, an unclosed IPv6 bracket or a lone surrogate must be caught here.
        if not is_http_url(url):
            return "invalid_url", None
        try:
            parts = urlsplit(url)
        except ValueError:  # what urlsplit refuses, yarl accepted: still not a URL for us
            return "invalid_url", None
        return self._reasons(url, parts.hostname or "", parts.path)

    def _reasons(self, url: str, host: str, path: str) -> tuple[str | None, str | None]:
        settings = self.settings
        if len(url) > settings.max_url_length:
            return "trap", None
        if not self.allows_host(host):
            return "offsite", None
        segments = [s for s in path.split("/") if s]
        if (
            len(segments) > settings.max_path_repeats  # fewer cannot repeat too often
            and Counter(segments).most_common(1)[0][1] > settings.max_path_repeats
        ):
            return None, "trap"
        if settings.include and not any(p.search(url) for p in settings.include):
            return None, "excluded"
        if any(p.search(url) for p in settings.exclude):
            return None, "excluded"
        return None, None


def _ascii_host(host: str) -> str:
    """bücher.example and xn--bcher-kva.example are one host: compare the ASCII form."""
    host = host.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host
