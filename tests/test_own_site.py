"""A user's own parser module beside the config file, run by the ``crawl`` command
from another folder, with no PYTHONPATH: found, and found by the parse processes too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gensite import GeneratedSite

CRAWL = Path(sys.executable).with_name("crawl")  # the console script, as a user runs it

MYSHOP = """
from crawler.parse import Item, Site


class MyShop(Site):
    name = "myshop"

    def parse(self, page):
        yield Item(url=page.url, heading=page.css("h1::text").get())
        yield from page.links()
"""


@pytest.fixture(scope="module")
def site() -> Iterator[GeneratedSite]:
    with GeneratedSite(pages=20) as running:
        yield running


def crawl(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([str(CRAWL), str(config), "--quiet"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def write_config(folder: Path, site: GeneratedSite, spec: str, workers: int) -> Path:
    config = folder / "myshop.toml"
    config.write_text(
        f'[crawl]\nstart_urls = ["{site.url("/")}"]\nsite = "{spec}"\nsitemaps = false\n'
        f"parse_workers = {workers}\n"
        f'[rate_limit]\nper_host = ""\n[output]\ndir = "{folder / "out"}"\n',
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize(("spec", "workers"), [("myshop:MyShop", 1), ("myshop", 2)])
def test_a_site_module_beside_the_config_is_found(
    spec: str, workers: int, site: GeneratedSite, tmp_path: Path
) -> None:
    folder, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "myshop.py").write_text(MYSHOP, encoding="utf-8")
    done = crawl(write_config(folder, site, spec, workers), cwd=elsewhere)
    assert (done.returncode, done.stderr) == (0, "")
    lines = (folder / "out" / "items.jsonl").read_text(encoding="utf-8").splitlines()
    headings = {json.loads(line)["heading"] for line in lines}
    assert {"Home", "Page 0", "Page 19"} <= headings


def test_an_unknown_site_names_where_it_looked(site: GeneratedSite, tmp_path: Path) -> None:
    config = write_config(tmp_path, site, "myshopp:MyShop", 1)
    done = crawl(config, cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("crawl: crawl.site: unknown site 'myshopp:MyShop': tried myshopp.py")
    assert "expected" not in line
    assert "beside the config" in line
    assert "Bundled sites: generic, shop" in line


PIDS = """
import os

from crawler.parse import Item, Site


class Pids(Site):
    def parse(self, page):
        yield Item(url=page.url, parent=os.getppid())
        yield from page.links()
"""


def test_auto_parses_in_processes_on_the_command_line_when_cores_allow(
    site: GeneratedSite, tmp_path: Path
) -> None:
    from crawler.crawl.parser import auto_parse_workers

    (tmp_path / "pids.py").write_text(PIDS, encoding="utf-8")
    config = write_config(tmp_path, site, "pids:Pids", 1)
    text = config.read_text(encoding="utf-8").replace("parse_workers = 1\n", "")
    config.write_text(text, encoding="utf-8")  # the default: "auto"
    done = crawl(config, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    lines = (tmp_path / "out" / "items.jsonl").read_text(encoding="utf-8").splitlines()
    # The crawl is this test's child; a parse process is the crawl's.
    parents = {json.loads(line)["parent"] for line in lines}
    assert len(lines) > 20  # every page of the site
    if auto_parse_workers() > 1:
        assert len(parents) == 1
        assert os.getpid() not in parents
    else:  # threads of the crawl's own process
        assert parents == {os.getpid()}


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 2), (3, 3), (64, 4)])
def test_auto_means_a_process_per_core_from_two_cores_up_to_four(cores: int, workers: int) -> None:
    from crawler.crawl.parser import auto_parse_workers

    assert auto_parse_workers(cores) == workers
