"""One fetch policy: every setting defined once, built the same way by the Fetcher,
the SyncFetcher, a crawl config and the health checks, refused with the key as the
user wrote it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from crawler import Fetcher, FetchPolicy, SyncFetcher, Timeouts
from crawler.config import SCHEMA, parse_config
from crawler.errors import ConfigError
from crawler.health.targets import parse_health_config
from crawler.policy import CRAWL, FETCHER, HEALTH, settings

README = Path(__file__).resolve().parent.parent / "README.md"
START = {"crawl": {"start_urls": ["http://a.test/"]}}


def test_every_setting_has_a_check_a_sentence_and_at_most_one_toml_key() -> None:
    names = [setting.name for setting in settings()]
    assert names == list(inspect.signature(FetchPolicy).parameters)
    tomls = [setting.toml for setting in settings() if setting.toml is not None]
    assert len(tomls) == len(set(tomls))
    for setting in settings():
        assert setting.doc
        assert callable(setting.check)
        if setting.toml is not None:
            section, dot, key = setting.toml.partition(".")
            if dot:
                assert key in SCHEMA[section], f"{setting.toml} is not read from a crawl config"
            else:  # a whole table ([browser]): every key of it
                assert setting.keys
                assert set(SCHEMA[section]) == set(setting.keys)


def test_the_fetchers_take_exactly_the_policy_settings() -> None:
    policy = list(inspect.signature(FetchPolicy).parameters)
    assert list(inspect.signature(Fetcher).parameters) == policy
    assert list(inspect.signature(SyncFetcher).parameters) == policy


def test_the_readme_documents_every_fetcher_setting_with_its_default() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| argument | default | meaning |") :].split("\n\n")[0]
    documented = re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", table, re.MULTILINE)
    names = {name for pair in documented for name in pair if name}
    assert names == {setting.name for setting in settings()}


def test_profiles_differ_from_the_fetcher_only_where_the_readme_says() -> None:
    def differences(profile: FetchPolicy) -> set[str]:
        return {s.name for s in settings() if getattr(profile, s.name) != getattr(FETCHER, s.name)}

    assert differences(CRAWL) == {
        "timeout", "retries", "rate_limit", "body_memory", "follow_redirects"
    }  # fmt: skip
    assert differences(HEALTH) == {"timeout"}
    assert (CRAWL.timeouts.total, CRAWL.retries, CRAWL.rate, CRAWL.body_memory) == (
        15.0, 2, 4.0, 48_000_000
    )  # fmt: skip


def test_a_crawl_config_and_keywords_build_the_same_policy() -> None:
    config = parse_config({
        **START,
        "fetch": {"timeout": 3, "headers": {"X-A": "1"}, "engine": "threads"},
        "retry": {"retries": 4, "statuses": [503]},
        "rate_limit": {"per_host": "30/m"},
    })  # fmt: skip
    by_keyword = CRAWL.replace(
        timeout=Timeouts(total=3.0), headers={"X-A": "1"}, engine="threads", retries=4,
        retry_statuses=[503], rate_limit=0.5,
    )  # fmt: skip
    assert config.fetch == by_keyword
    assert Fetcher.of(config.fetch).policy == config.fetch


@pytest.mark.parametrize(
    ("keywords", "key", "message"),
    [
        ({"timeout": 0}, "timeout", 'timeout: expected a positive number of seconds, or a duration like "90s"'),
        ({"retries": -1}, "retries", "retries: expected a non-negative integer, got -1"),
        ({"rate_limit": "fast"}, "rate_limit", 'rate_limit: expected a rate like "4/s"'),
        ({"retry_statuses": [200, 999]}, "retry_statuses[1]", "retry_statuses[1]: expected an HTTP status"),
        ({"engine": "curl"}, "engine", "engine: expected one of aiohttp"),
        ({"allow_private": ["127.0.0.1"]}, "block_private", "block_private: expected true when allow_private is set"),
        ({"block_private": True, "proxy": "http://p.test:3128/"}, "block_private", "block_private: expected false when a proxy is set"),
        ({"headers": {"X": 1}}, "headers.X", "headers.X: expected a string, got 1"),
    ],
)  # fmt: skip
def test_a_bad_keyword_names_the_keyword(keywords: dict[str, Any], key: str, message: str) -> None:
    for build in (FetchPolicy, Fetcher, SyncFetcher):
        with pytest.raises(ConfigError, match="^" + re.escape(message)) as caught:
            build(**keywords)
        assert caught.value.key == key


@pytest.mark.parametrize(
    ("tables", "key"),
    [
        ({"fetch": {"timeout": 0}}, "fetch.timeout"),
        ({"retry": {"retries": -1}}, "retry.retries"),
        ({"rate_limit": {"per_host": "fast"}}, "rate_limit.per_host"),
        ({"retry": {"statuses": [200, 999]}}, "retry.statuses[1]"),
        ({"fetch": {"allow_private": ["127.0.0.1"]}}, "fetch.block_private"),
        ({"fetch": {"block_private": True, "allow_private": ["nope"]}}, "fetch.allow_private[0]"),
        ({"fetch": {"block_private": True, "proxy": "http://p.test:3128/"}}, "fetch.block_private"),
        ({"fetch": {"follow_redirects": True}}, "fetch.follow_redirects"),  # keyword only
    ],
)  # fmt: skip
def test_a_bad_toml_value_names_the_dotted_key(tables: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**START, **tables})
    assert caught.value.key == key


def test_health_targets_fetch_by_the_health_profile_with_their_own_settings() -> None:
    config = parse_health_config({
        "defaults": {"timeout": 4, "retries": 1},
        "target": [{"url": "http://a.test/", "follow_redirects": False}, {"url": "http://b.test/"}],
    })  # fmt: skip
    first, second = (t.policy(engine="threads", concurrency=5) for t in config.targets)
    assert first == HEALTH.replace(
        engine="threads", concurrency=5, per_host_concurrency=5, timeout=4.0, retries=1,
        follow_redirects=False, max_backoff=4.0,
    )  # fmt: skip
    assert second == first.replace(follow_redirects=True)
    with pytest.raises(ConfigError) as caught:
        parse_health_config({"target": [{"url": "http://a.test/", "retries": -1}]})
    assert caught.value.key == "target[0].retries"


def test_equal_policies_are_one_key() -> None:
    """The health checks open one Fetcher per distinct policy."""
    assert FetchPolicy(timeout=5, headers={"A": "1"}) == FetchPolicy(
        timeout=Timeouts(total=5.0), headers=[("A", "1")]
    )
    assert len({FetchPolicy(rate_limit="60/m"), FetchPolicy(rate_limit=1)}) == 1
