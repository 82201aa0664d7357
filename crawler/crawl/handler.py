"""One leased request to its outcome: fetched through the policy chain, the answer
dispatched (a redirect, a sitemap, an error status, a type not parsed, a page),
the links found scoped, a failure made an error record.

Nothing here leases or commits: the outcome goes to the committer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit, urlunsplit

from crawler.config import Config
from crawler.crawl.budget import PageBudget
from crawler.crawl.fresh_links import FreshLinks
from crawler.crawl.outcome import Outcome
from crawler.crawl.parser import PageParser
from crawler.crawl.rounds import GONE, classify, conditional_headers, digest, next_state
from crawler.crawl.scope import Scope
from crawler.errors import (
    ErrorRecord,
    FetchError,
    HTTPStatusError,
    InvalidURL,
    ParseError,
    RequestDropped,
    RetryLater,
    SinkError,
    TooManyRedirects,
)
from crawler.frontier import PageState, PageUpdate
from crawler.middleware import Robots
from crawler.middleware.redirects import CREDENTIALS
from crawler.models import Handler, Headers, Lineage, Request, Response, make_headers
from crawler.parse import Page
from crawler.parse.sitemaps import parse_sitemap
from crawler.sinks import PagesSink
from crawler.urls import fingerprint, origin

__all__ = ["MAX_SITEMAP_NESTING", "RequestHandler", "sitemap_request"]

MAX_SITEMAP_NESTING = 3  # sitemap index levels followed


log = logging.getLogger(__name__)


def sitemap_request(url: str, nesting: int = 0) -> Request:
    return Request(url, lineage=Lineage(kind="sitemap", nesting=nesting))


class RequestHandler:
    """Turns leased requests into outcomes; one per run, shared by its fetch tasks.

    Configured credentials (``Authorization``, ``Cookie``, ``Proxy-Authorization``
    among ``fetch.headers``) go only to the origins of the start URLs, not to every
    origin in scope a link or redirect leads to (another port, a subdomain).
    """

    def __init__(
        self,
        config: Config,
        *,
        send: Handler,
        parser: PageParser,
        scope: Scope,
        budget: PageBudget,
        pages: PagesSink | None,
        round: int = 0,
        archive: bool = False,
        robots: Robots | None = None,
    ) -> None:
        self._fetch_policy = config.fetch
        self._recrawl, self._round = config.recrawl, round
        self._archive = archive  # keep each response on its outcome, for the WARC files
        self._renders = config.fetch.renders  # items say whether their page was rendered
        self._content_types = config.crawl.content_types
        self._send, self._parser, self._scope = send, parser, scope
        self._budget, self._pages = budget, pages
        headers = config.fetch.request_headers
        self._headers = make_headers(headers)
        anonymous = [(name, value) for name, value in headers if name.lower() not in CREDENTIALS]
        self._anonymous = make_headers(anonymous) if len(anonymous) < len(headers) else None
        self._credential_origins = {origin(url) for url in config.crawl.start_urls}
        self._fetches: set[asyncio.Future[Response]] = set()
        self._parse_failed = False  # the first parse failure's traceback was shown
        self._fresh = FreshLinks(robots)  # robots: the chain's, asked of the links found

    def cancel_fetches(self) -> None:
        """Cut short every fetch in flight: their requests go back to the frontier."""
        for fetch in list(self._fetches):
            fetch.cancel()

    async def handle(self, leased: Request, known: PageState | None = None) -> Outcome:
        outcome = Outcome(leased, known=known)
        # Scope as the config says now: a rule added since the request was queued (an
        # exclude, a smaller max_depth) holds for it too, in a resume or a later round.
        if (reason := self._scope.drop_reason(leased.url, leased.lineage.depth)) is not None:
            outcome.dropped.append(reason)
            outcome.sent = False
            return outcome
        host = self._budget.take_host(leased)
        if host is False:
            outcome.dropped.append("host-budget")
            outcome.sent = False
            return outcome
        outcome.host = host or None
        response = await self._fetch(outcome)
        if response is not None:
            outcome.status, outcome.size = response.status, len(response.body)
            outcome.fetched_at = time.time()
            outcome.rendered = response.rendered_from is not None
            if self._archive:  # what the server sent, not what the browser made of it
                outcome.response = response.rendered_from or response
            if self._recrawl is None or leased.lineage.kind != "page" or response.is_redirect:
                await self._on_response(outcome, response)
            else:
                await self._revalidated(outcome, response)
        return outcome

    async def _revalidated(self, outcome: Outcome, response: Response) -> None:
        """A page of a crawl in rounds. Unchanged, removed or still gone: its state is
        updated and nothing more is done (no parse, no item, no error). New or changed:
        handled as any page, then its state kept, its links the outlinks (an error
        keeps the old state)."""
        assert self._recrawl is not None
        # The server's document decides, not the DOM scripts built from it.
        known, body_digest = outcome.known, digest((response.rendered_from or response).body)
        change = classify(known, response.status, body_digest)
        still_gone = (change is None and known is not None
                      and response.status in GONE and known.status in GONE)  # fmt: skip
        if change in ("unchanged", "removed") or still_gone:
            state = next_state(known, response, change or "removed", body_digest,
                               outcome.fetched_at, self._recrawl, self._round)  # fmt: skip
            outcome.change = change
            outcome.page = PageUpdate(outcome.request, state, outlinks=None if change else [])
            return
        await self._on_response(outcome, response)
        if change not in ("new", "changed") or outcome.error is not None:
            return
        state = next_state(known, response, change, body_digest, outcome.fetched_at,
                           self._recrawl, self._round)  # fmt: skip
        outcome.change = change
        outcome.page = PageUpdate(outcome.request, state, outlinks=list(outcome.links))
        for item in outcome.items:
            item["round"], item["change"] = self._round, change

    async def _fetch(self, outcome: Outcome) -> Response | None:
        """The response, or None with the outcome saying why there is none."""
        leased = outcome.request
        policy = self._fetch_policy
        headers = self._headers_for(leased.url)
        if self._recrawl is not None and (validators := conditional_headers(outcome.known)):
            headers = make_headers([*headers.items(), *validators])
        request = Request(leased.url, headers=headers,
                          timeouts=policy.timeouts, max_bytes=policy.max_bytes,
                          lineage=leased.lineage, meta=leased.meta)  # fmt: skip
        fetch = asyncio.ensure_future(self._send(request))
        self._fetches.add(fetch)
        try:
            return await fetch
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not fetch.cancelled() or (task is not None and task.cancelling()):
                raise
            # stop() ran out of patience: the request goes back untouched, for the next run.
            outcome.release_at, outcome.interrupted = 0.0, True
        except RequestDropped as exc:
            outcome.dropped.append(exc.reason)
            outcome.sent = False
            if outcome.host is not None:  # never sent: not a page of that host
                self._budget.release_host(outcome.host)
                outcome.host = None
        except RetryLater as exc:
            tries = leased.lineage.tries + 1
            if tries <= policy.retries:
                outcome.request = leased.replace(lineage=leased.lineage.replace(tries=tries))
                outcome.release_at = exc.not_before
            elif exc.response is not None:  # out of tries on a status: that is the answer
                return exc.response
            else:  # out of tries on an error: report that error
                self._fail(outcome, exc.__cause__ or exc)
        except FetchError as exc:
            self._fail(outcome, exc)
        finally:
            self._fetches.discard(fetch)
            # The task holds the error, whose traceback holds this frame, which holds
            # the task: a cycle only the garbage collector would free.
            del fetch
        return None

    async def _on_response(self, outcome: Outcome, response: Response) -> None:
        request = outcome.request
        if response.is_redirect:
            self._follow_redirect(outcome, response)
        elif request.lineage.kind == "sitemap":
            if response.ok:
                # Up to 50,000 URLs: parsed and scoped in a thread, off the loop.
                await asyncio.to_thread(self._read_sitemap, outcome, response)
        elif response.status >= 400:
            error = HTTPStatusError(f"HTTP {response.status}", response=response)
            self._fail(outcome, error)
        elif response.content_type not in self._content_types:
            outcome.dropped.append("content-type")
        else:
            await self._parse(outcome, response)
        if self._pages is not None and response.body:
            try:
                await self._pages.write_page(response.url, response.body)
            except SinkError as exc:  # e.g. /a.html and /a.html/b want one path twice
                if outcome.error is None:
                    self._fail(outcome, exc)

    def _follow_redirect(self, outcome: Outcome, response: Response) -> None:
        """In a crawl a redirect target is a link: scoped, deduplicated, robots-checked."""
        request = outcome.request
        hops = request.lineage.hops + 1
        limit = self._fetch_policy.max_redirects
        target = absolute_location(response.url, response.headers["location"])
        if hops > limit:
            error: FetchError = TooManyRedirects(f"more than {limit} redirects")
        elif target is None:
            error = InvalidURL("redirect to an unusable URL")
        elif same_page(target, request.url):
            error = TooManyRedirects(f"redirects to itself ({target})")
        else:
            lineage = request.lineage.replace(hops=hops, referrer=request.url, tries=0)
            self._add_links(outcome, [Request(target, lineage=lineage, meta=request.meta)],
                            depth=lineage.depth)  # fmt: skip
            return
        self._fail(outcome, error, status=response.status)

    def _read_sitemap(self, outcome: Outcome, response: Response) -> None:
        sitemap = parse_sitemap(response.body)
        nesting = outcome.request.lineage.nesting + 1
        children = [sitemap_request(url, nesting) for url in sitemap.sitemaps]
        if nesting > MAX_SITEMAP_NESTING:  # an index of indexes of ...: a trap
            outcome.dropped += ["trap"] * len(children)
            children = []
        self._add_links(outcome, children, depth=0)
        found = Lineage(depth=1, referrer=response.url)
        self._add_links(outcome, [Request(url, lineage=found) for url in sitemap.pages], depth=1)

    async def _parse(self, outcome: Outcome, response: Response) -> None:
        request = outcome.request
        lineage = request.lineage
        page = Page.from_response(response, depth=lineage.depth, referrer=lineage.referrer,
                                  data=request.meta)  # fmt: skip
        outcome.parsed = True
        try:
            items, links, dropped, data, failures = await self._parser.parse(page)
        except ParseError as exc:
            self._fail(outcome, exc, status=response.status)
            if not self._parse_failed:  # once: the rest are records in the errors file
                self._parse_failed = True
                log.error("the site %s failed on %s (the first parse error; the others "
                          "go to the errors file only):\n%s", exc.site, exc.url,
                          exc.details.rstrip() or exc)  # fmt: skip
            return
        fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
        for item in items:
            if item.get("fetched_at", "") is None:
                item["fetched_at"] = fetched_at
            if self._renders:
                item.setdefault("rendered", outcome.rendered)
        outcome.items += items
        outcome.problems += [ErrorRecord(page.url, "extract", response.status, failure,
                                         lineage.referrer) for failure in failures]  # fmt: skip
        child = Lineage(depth=page.depth + 1, referrer=page.url)
        if self._recrawl is None:  # in rounds every link is a page's outlink
            links, disallowed = self._fresh(links)
            outcome.dropped += ["robots"] * disallowed
        outcome.links += [Request(url, lineage=child, meta=data.get(url, {})) for url in links]
        outcome.dropped += dropped

    def _add_links(self, outcome: Outcome, links: list[Request], *, depth: int) -> None:
        for link in links:
            reason = self._scope.drop_reason(link.url, depth)
            if reason is None:
                outcome.links.append(link)
            else:
                outcome.dropped.append(reason)

    def _fail(self, outcome: Outcome, exc: BaseException, *, status: int | None = None) -> None:
        request = outcome.request
        outcome.error = ErrorRecord.of(
            exc, url=request.url, referrer=request.lineage.referrer, status=status
        )

    def _headers_for(self, url: str) -> Headers:
        if self._anonymous is None or origin(url) in self._credential_origins:
            return self._headers
        return self._anonymous


def same_page(a: str, b: str) -> bool:
    try:
        return fingerprint(a) == fingerprint(b)
    except ValueError:
        return False


def absolute_location(base: str, location: str) -> str | None:
    try:
        target = urljoin(base, location.strip())
    except ValueError:
        return None
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit(parts._replace(fragment=""))
