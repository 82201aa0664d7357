"""Watch mode's HTTP server: the status page, its JSON and /metrics over a real
loopback server, then the page's live refresh in Debian's Chromium."""

from __future__ import annotations

import errno
import json
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from bs4 import BeautifulSoup, Tag
from playwright.async_api import Browser, Page, async_playwright

from crawler.health.history import History
from crawler.health.result import Failure, HealthResult
from crawler.health.server import StatusServer
from crawler.health.store import DAY, HOUR, HistoryStore

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
WAIT_MS = 5_000  # how long the browser tests wait for the page to catch up
EVIL_NAME = "<script>alert(1)</script>"
EVIL_SEEN = '<img src=x onerror="alert(2)">'


def passed(name: str, at: float, *, latency: float = 0.12, status: int = 200) -> HealthResult:
    return HealthResult(
        name, f"https://example.test/{name}", ok=True, checked_at=at, latency=latency, status=status
    )


def refused(name: str, at: float) -> HealthResult:
    return HealthResult(
        name,
        f"https://example.test/{name}",
        ok=False,
        checked_at=at,
        latency=0.002,
        error="refused",
        message="connection refused",
    )


def metrics(history: History) -> str:
    return f"# stub\ncrawl_targets {len(history.targets())}\n"


def status_server(history: History, **options: Any) -> StatusServer:
    return StatusServer(history, port=0, metrics=metrics, **options)


async def get(
    server: StatusServer, path: str, method: str = "GET"
) -> tuple[aiohttp.ClientResponse, str]:
    """The response (headers, status) and its body text."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.url + path.lstrip("/")) as response,
    ):
        return response, await response.text()


def rows(page: str) -> dict[str, Tag]:
    soup = BeautifulSoup(page, "html.parser")
    return {str(row["data-target"]): row for row in soup.select("[data-target]")}


def up_and_down() -> History:
    history = History()
    history.record([passed("api", T0), refused("db", T0)])
    return history


# -- over HTTP -----------------------------------------------------------------------------


async def test_page_shows_each_target_state_server_side() -> None:
    async with status_server(up_and_down(), title="Prod") as server:
        response, page = await get(server, "/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    soup = BeautifulSoup(page, "html.parser")
    assert soup.h1 is not None
    assert soup.h1.get_text() == "Prod"
    summary = soup.select_one("#summary")
    assert summary is not None
    assert summary["data-state"] == "down"
    assert summary.get_text() == "1 of 2 down"
    assert "2023-11-14 22:13:20 UTC" in soup.select_one("#checked").get_text()  # type: ignore[union-attr]
    found = rows(page)
    assert list(found) == ["api", "db"]
    api, db = found["api"], found["db"]
    assert (api["data-state"], db["data-state"]) == ("up", "down")
    assert [row.select_one(".badge").get_text() for row in (api, db)] == ["UP", "DOWN"]  # type: ignore[union-attr]
    assert api.select_one("a")["href"] == "https://example.test/api"  # type: ignore[index]
    cells = [td.get_text() for td in api.select("td")]
    assert cells[2:7] == ["200", "120 ms", "120 ms", "120 ms", "100.0%"]
    assert "refused: connection refused" in db.get_text()
    assert api.select(".reason") == []


async def test_page_escapes_what_targets_and_servers_say() -> None:
    history = History()
    history.record(
        [
            HealthResult(
                EVIL_NAME,
                "https://example.test/?q=<b>",
                ok=False,
                checked_at=T0,
                latency=0.1,
                status=200,
                failures=(Failure('json."x"', "<b>", EVIL_SEEN),),
            ),
            HealthResult("js", "javascript:alert(3)", ok=True, checked_at=T0, latency=0.1),
        ]
    )
    async with status_server(history, title="<i>ops</i>") as server:
        _, page = await get(server, "/")
    assert page.lower().count("<script") == 1, "only the page's own script"
    assert "<img" not in page
    assert "<b>" not in page
    assert "<i>" not in page
    row = rows(page)[EVIL_NAME]
    assert row.select_one("a").get_text() == EVIL_NAME  # type: ignore[union-attr]
    assert f"expected <b>, saw {EVIL_SEEN}" in row.select_one(".reason").get_text()  # type: ignore[union-attr]
    assert rows(page)["js"].select("a") == [], "a javascript: URL is not a link"


async def test_status_json_matches_the_history_and_reads_it_live() -> None:
    history = up_and_down()
    async with status_server(history, interval=30) as server:
        _, before = await get(server, "/status.json")
        history.record([refused("api", T0 + 30), passed("db", T0 + 30, latency=0.3)])
        response, after = await get(server, "/status.json")
    assert response.content_type == "application/json"
    assert json.loads(before)["summary"] == "1 of 2 down"
    status = json.loads(after)
    assert (status["interval"], status["state"], status["last_check"]) == (30, "down", T0 + 30)
    for target, shown in zip(history.targets(), status["targets"], strict=True):
        assert target.last is not None
        assert shown["name"] == target.name
        assert shown["url"] == target.url
        assert shown["state"] == ("up" if target.last.ok else "down")
        assert shown["status"] == target.last.status
        assert shown["reason"] == target.last.reason
        assert shown["uptime"] == target.uptime() == 0.5
        assert (shown["runs"], shown["failures"]) == (target.runs, target.failures)
        assert [s["checked_at"] for s in shown["samples"]] == [T0, T0 + 30]
    api, db = status["targets"]
    assert api["latency_ms"] is None
    assert api["p95_ms"] == 120.0
    assert db["latency_ms"] == 300.0
    assert db["p50_ms"] == 300.0


async def test_metrics_serves_what_the_renderer_returns() -> None:
    history = up_and_down()
    seen: list[History] = []

    def render(given: History) -> str:
        seen.append(given)
        return metrics(given)

    async with StatusServer(history, port=0, metrics=render) as server:
        response, body = await get(server, "/metrics")
        head, head_body = await get(server, "/metrics", method="HEAD")
        healthz, ok = await get(server, "/healthz")
    assert response.status == 200
    assert body == "# stub\ncrawl_targets 2\n"
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert seen[0] is history
    assert head.status == 200
    assert head_body == ""
    assert head.headers["Content-Type"] == response.headers["Content-Type"]
    assert (healthz.status, ok) == (200, "ok")


async def test_unchecked_targets_are_pending() -> None:
    async with status_server(History()) as server:
        _, empty = await get(server, "/")
    assert "Waiting for the first check" in empty
    assert "No checks yet" in empty
    history = History()
    history.expect("api", "https://example.test/api")
    async with status_server(history) as server:
        _, page = await get(server, "/")
        _, json_text = await get(server, "/status.json")
    api = rows(page)["api"]
    assert api["data-state"] == "pending"
    assert api.select_one(".badge").get_text() == "PENDING"  # type: ignore[union-attr]
    assert [td.get_text() for td in api.select("td")][2:7] == ["\u2013"] * 5
    assert json.loads(json_text)["targets"][0]["state"] == "pending"


async def test_history_strip_keeps_the_newest_samples_oldest_first() -> None:
    history = History(size=3)
    for run in range(5):
        history.record([passed("api", T0 + run) if run % 2 else refused("api", T0 + run)])
    async with status_server(history) as server:
        _, page = await get(server, "/")
    bars = rows(page)["api"].select(".strip span")
    assert [bar["class"] for bar in bars] == [["down"], ["up"], ["down"]]
    assert [str(bar["title"])[:19] for bar in bars] == [
        "2023-11-14 22:13:22",
        "2023-11-14 22:13:23",
        "2023-11-14 22:13:24",
    ]
    assert str(bars[1]["title"]).endswith("200 \u00b7 120 ms")
    assert str(bars[2]["title"]).endswith("refused: connection refused")


async def test_a_taken_port_raises_oserror_naming_the_address() -> None:
    async with status_server(History()) as first:
        taken = StatusServer(History(), port=first.port, metrics=metrics)
        with pytest.raises(OSError, match=f"127.0.0.1:{first.port}") as caught:
            await taken.open()
    assert caught.value.errno == errno.EADDRINUSE


# -- in the browser ------------------------------------------------------------------------

in_browser = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "no chromium on PATH: install Debian's chromium package (apt-get install chromium)"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"], headless=True
        )
        yield launched
        await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    yield await context.new_page()
    await context.close()


async def badge(page: Page, name: str) -> str:
    return await page.locator(f'[data-target="{name}"] .badge').inner_text()


@in_browser
async def test_browser_shows_each_target_state(page: Page) -> None:
    async with status_server(up_and_down(), interval=0.2) as server:
        await page.goto(server.url)
        for name, state in [("api", "up"), ("db", "down")]:
            row = page.locator(f'[data-target="{name}"]')
            assert await row.get_attribute("data-state") == state
            assert await row.locator(".badge").is_visible()
            assert await badge(page, name) == state.upper()
        assert await page.locator("#lost").is_hidden()


@in_browser
async def test_browser_follows_new_runs_without_reloading(page: Page) -> None:
    history = up_and_down()
    async with status_server(history, interval=0.2) as server:
        await page.goto(server.url)
        await page.evaluate("window.sameDocument = true")
        history.record([refused("api", T0 + 30), passed("db", T0 + 30), passed(EVIL_SEEN, T0 + 30)])
        await page.wait_for_selector('[data-target="api"][data-state="down"]', timeout=WAIT_MS)
        await page.wait_for_selector('[data-target="db"][data-state="up"]', timeout=WAIT_MS)
        assert await page.evaluate("window.sameDocument") is True, "the page reloaded"
        assert (await badge(page, "api"), await badge(page, "db")) == ("DOWN", "UP")
        assert await page.locator("#summary").inner_text() == "1 of 3 down"
        assert await page.title() == "1 of 3 down \u00b7 crawl check"
        reason = page.locator('[data-target="api"] .reason')
        assert await reason.inner_text() == "refused: connection refused"
        assert await page.locator('[data-target="db"] .strip span').count() == 2
        # Rendered from JSON as text: the name shows as written, not as an element.
        assert await page.get_by_role("link", name=EVIL_SEEN, exact=True).count() == 1
        assert await page.locator("tbody img").count() == 0


@in_browser
async def test_browser_notices_a_lost_connection_and_recovers(page: Page) -> None:
    history = up_and_down()
    server = status_server(history, interval=0.2)
    async with server:
        await page.goto(server.url)
        assert await page.locator("#lost").is_hidden()
    await page.wait_for_selector("#lost", state="visible", timeout=WAIT_MS)
    assert await page.locator("#lost").inner_text() != ""
    assert await page.locator("[data-target]").count() == 2, "the last data stays"
    async with StatusServer(history, port=server.port, metrics=metrics, interval=0.2):
        await page.wait_for_selector("#lost", state="hidden", timeout=WAIT_MS)


@pytest.fixture
def ten_days(tmp_path: Path) -> Iterator[tuple[History, HistoryStore, float]]:
    """Ten days of hourly checks ending at ``now``: api DOWN for 2 h on day 7 and one
    failed check on day 8 (it needs two to go DOWN); db DOWN since day 9, 06:00."""
    start = T0 - T0 % DAY - 9 * DAY  # midnight UTC, nine days before T0's
    history = History()
    history.expect("api", "https://example.test/api", failures=2)
    history.expect("db", "https://example.test/db")
    with HistoryStore(tmp_path / "health.sqlite3") as store:
        now = start
        for hour in range(10 * 24):
            now = start + hour * HOUR
            api_fails = hour in (7 * 24 + 10, 7 * 24 + 11, 7 * 24 + 12, 8 * 24 + 3)
            db_fails = hour >= 9 * 24 + 6
            results = [(refused if api_fails else passed)("api", now),
                       (refused if db_fails else passed)("db", now)]  # fmt: skip
            changes = history.record(results)
            store.record(results, changes, history, quiet=lambda name: False, now=now)
        yield history, store, now + 60


@in_browser
async def test_browser_shows_uptime_days_and_incidents_as_the_server_renders_them(
    page: Page, ten_days: tuple[History, HistoryStore, float]
) -> None:
    history, store, now = ten_days
    async with status_server(history, interval=0.2, store=store, clock=lambda: now) as server:
        await page.goto(server.url)
        served = tags(await page.locator("#history").inner_html())
        api_days = page.locator('[data-uptime="api"] .days span')
        assert await api_days.count() == 90
        states = [await api_days.nth(i).get_attribute("class") for i in range(80, 90)]
        assert states == ["up"] * 7 + ["down", "degraded", "up"]
        assert await api_days.nth(79).get_attribute("class") == "none"  # before the first check
        assert await api_days.nth(87).get_attribute("title") == (
            f"{time_of(now - 2 * DAY)} \u00b7 87.50% \u00b7 down"  # 3 of 24 checks failed
        )
        db_days = page.locator('[data-uptime="db"] .days span')
        assert await db_days.nth(89).get_attribute("class") == "down"
        cells = page.locator('[data-uptime="api"] td')
        assert [await cells.nth(i).inner_text() for i in range(5)] == [
            "api", "100.00%", "97.63%", "98.33%", "98.33%",  # 4 failures in 169 and 240 checks
        ]  # fmt: skip
        incidents = page.locator("#incidents tr")
        assert await incidents.count() == 2
        db, api = incidents.nth(0), incidents.nth(1)
        assert await db.get_attribute("data-ongoing") == "true"
        assert (await db.locator("td").nth(2).inner_text()).startswith("ongoing, ")
        assert await api.get_attribute("data-incident") == "api"
        assert await api.locator("td").nth(2).inner_text() == "2 h"  # DOWN at 11:00, UP at 13:00
        assert await api.locator(".reason").inner_text() == "refused: connection refused"
        # The page's own script draws the same sections from /status.json.
        await page.evaluate("""() => {
            document.getElementById("uptime").replaceChildren();
            document.getElementById("incidents").replaceChildren();
        }""")
        await page.wait_for_selector('[data-uptime="api"]', timeout=WAIT_MS)
        assert tags(await page.locator("#history").inner_html()) == served


def tags(html: str) -> str:
    """The markup without the line breaks the server puts between rows."""
    return re.sub(r">\s+<", "><", html)


def time_of(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d")


async def test_without_a_store_the_history_sections_stay_hidden() -> None:
    async with status_server(up_and_down()) as server:
        _, page = await get(server, "/")
        _, text = await get(server, "/status.json")
    section = BeautifulSoup(page, "html.parser").select_one("#history")
    assert section is not None
    assert section.has_attr("hidden")
    status = json.loads(text)
    assert status["history"] is False
    assert status["incidents"] == []
    assert status["targets"][0]["days"] == []
