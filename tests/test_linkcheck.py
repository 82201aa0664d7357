"""`crawl check --crawl config.toml`: every broken link of a site, with the pages
that link to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import JUnitXml

from crawler.cli import main
from crawler.health.linkcheck import check_links
from tests.server import LINKED_SITE, LoopbackServer


def crawl_config(tmp_path: Path, server: LoopbackServer, engine: str = "aiohttp") -> Path:
    path = tmp_path / "crawl.toml"
    path.write_text(f"""
[crawl]
start_urls = ["{server.url("/site/")}"]
[fetch]
engine = "{engine}"
timeout = 5
[retry]
retries = 0
[rate_limit]
per_host = ""
[output]
dir = "{tmp_path / "never-used"}"
""")
    return path


async def test_every_broken_link_is_reported_with_the_pages_linking_to_it(
    server: LoopbackServer, tmp_path: Path, engine: str
) -> None:
    report = await check_links(crawl_config(tmp_path, server, engine))
    assert report.complete
    results = report.broken
    found = {result.url: result for result in results}
    site = server.url("/site/")
    assert found.keys() == {
        server.url("/site/missing"), server.url("/status/500"),
        server.url("/status/410"), server.url("/site/gone"),
    }  # fmt: skip
    assert not any(result.ok for result in results)
    assert sorted(found[server.url("/site/missing")].linked_from) == [site, server.url("/site/a")]
    assert found[server.url("/status/500")].status == 500
    assert found[server.url("/status/500")].reason == "status: expected below 400, saw 500"
    # a redirect to a broken page: reported at its target, linked from the pages
    # that link to the redirect
    assert found[server.url("/status/410")].linked_from == (site,)
    # two spellings of one URL are one page that links once
    assert found[server.url("/site/gone")].linked_from == (server.url("/site/b?x=1&y=2"),)
    assert not (tmp_path / "never-used").exists()  # state in a temporary folder


def test_the_cli_exits_1_with_broken_links_in_every_format(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path
) -> None:
    config = str(crawl_config(tmp_path, server))
    assert main(["check", "--crawl", config, "--format", "json"]) == 1
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 4
    assert all("linked_from" in record for record in records)
    assert " checked, 4 broken" in err
    assert main(["check", "--crawl", config, "--format", "junit"]) == 1
    (suite,) = JUnitXml.fromstring(capsys.readouterr().out.encode())
    assert (suite.tests, suite.failures) == (4, 4)
    assert main(["check", "--crawl", config]) == 1
    table = capsys.readouterr().out
    assert "linked from" in table
    assert server.url("/site/missing") in table


def test_a_site_without_broken_links_exits_0(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path
) -> None:
    config = crawl_config(tmp_path, server)
    config.write_text(config.read_text().replace("/site/", "/ok").replace(
        "[crawl]", "[crawl]\nsitemaps = false"))  # fmt: skip
    assert main(["check", "--crawl", str(config)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 checked, 0 broken"  # the one page


def test_an_output_folder_keeps_the_state_and_resumes(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path
) -> None:
    config, out = str(crawl_config(tmp_path, server)), tmp_path / "state"
    assert main(["check", "--crawl", config, "--output", str(out), "--format", "json"]) == 1
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    hits = server.hits_for("/site/a")
    assert main(["check", "--crawl", config, "--output", str(out), "--format", "json"]) == 1
    again = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for record in first + again:
        del record["checked_at"]
    assert again == first  # the finished crawl is read back, not redone
    assert server.hits_for("/site/a") == hits


def test_a_crawl_cut_short_by_max_pages_does_not_pass(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path
) -> None:
    config = crawl_config(tmp_path, server)
    config.write_text(config.read_text().replace("[fetch]", "max_pages = 1\n[fetch]"))
    assert main(["check", "--crawl", str(config)]) == 1
    err = capsys.readouterr().err
    assert "1 checked, 0 broken" in err
    assert "stopped at max_pages" in err


def test_command_line_options_override_the_crawl_config(
    capsys: pytest.CaptureFixture[str], server: LoopbackServer, tmp_path: Path
) -> None:
    config = str(crawl_config(tmp_path, server))
    assert main(["check", "--crawl", config, "--format", "json", "--timeout", "0.2"]) == 1
    records = {r["url"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert records[server.url("/slow?delay=0.4")]["error"] == "timeout"
    assert records[server.url("/slow?delay=0.4")]["linked_from"] == [server.url("/site/a")]


def test_the_footer_counts_every_page_fetched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Answered or not: /slow times out (0.4 s against 0.2 s) and still counts."""
    with LoopbackServer() as site:  # its own, so its requests are this crawl's alone
        config = crawl_config(tmp_path, site)
        # No /sitemap.xml probe: it looks for pages, it is not one.
        config.write_text(config.read_text().replace("[crawl]", "[crawl]\nsitemaps = false"))
        assert main(["check", "--crawl", str(config), "--timeout", "0.2"]) == 1
        fetched = [r["path"] for r in site.requests if r["path"] != "/robots.txt"]
    footer = capsys.readouterr().out.splitlines()[-1]
    assert "/slow?delay=0.4" in fetched
    assert len(fetched) == len(set(fetched)) > len(LINKED_SITE)
    assert footer == f"{len(fetched)} checked, 5 broken"
