"""The health-check file: what it accepts, and the key named in every refusal."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from crawler.errors import ConfigError
from crawler.health.targets import (
    _CHECKS,
    Target,
    load_health_config,
    parse_health_config,
)

ISSUE_EXAMPLE = r"""
[defaults]
timeout = 5
retries = 1

[[target]]
name = "home"
url = "https://example.org/"
status = [200, 301]            # or "2xx"
max_latency_ms = 800
body_contains = "Welcome"
body_regex = 'v\d+\.\d+'
headers = { "content-type" = "text/html" }
cert_min_days = 14             # TLS certificate must be valid at least this long

[[target]]
name = "api"
url = "https://example.org/api/health"
json = { "status" = "ok", "db.connected" = true }   # dotted paths into the JSON body
"""


def test_the_documented_example_parses(tmp_path: Path) -> None:
    path = tmp_path / "health.toml"
    path.write_text(ISSUE_EXAMPLE)
    home, api = load_health_config(path).targets
    assert (home.name, home.timeout, home.retries) == ("home", 5.0, 1)
    assert home.status.accepts(301)
    assert not home.status.accepts(302)
    assert home.max_latency_ms == 800
    assert home.body_contains == ("Welcome",)
    assert home.body_regex is not None
    assert home.body_regex.search("v1.2")
    assert home.headers == (("content-type", "text/html"),)
    assert home.cert_min_days == 14
    assert api.json == (("status", "ok"), ("db.connected", True))
    assert (api.timeout, api.retries, api.follow_redirects) == (5.0, 1, True)


def test_every_target_field_has_a_key() -> None:
    assert set(_CHECKS) == {field.name for field in fields(Target)}


def test_defaults_apply_and_targets_override() -> None:
    config = parse_health_config({
        "defaults": {"timeout": 2, "status": "2xx", "follow_redirects": False},
        "target": [{"url": "http://a.test/"}, {"url": "http://b.test/", "timeout": 7}],
    })  # fmt: skip
    a, b = config.targets
    assert a.name == "http://a.test/"
    assert a.timeout == 2.0
    assert b.timeout == 7.0
    assert not a.follow_redirects
    assert a.status.accepts(204)
    assert not a.status.accepts(301)


def test_without_a_status_condition_anything_below_400_passes() -> None:
    (target,) = parse_health_config({"target": [{"url": "http://a.test/"}]}).targets
    assert [s for s in (200, 204, 301, 399, 400, 404, 500) if target.status.accepts(s)] == [
        200, 204, 301, 399,
    ]  # fmt: skip


def test_a_relative_ca_file_is_found_beside_the_health_file(
    tmp_path: Path, tls_ca_file: str
) -> None:
    (tmp_path / "ca.pem").write_bytes(Path(tls_ca_file).read_bytes())
    path = tmp_path / "health.toml"
    path.write_text('[[target]]\nurl = "https://a.test/"\nverify_tls = "ca.pem"\n')
    (target,) = load_health_config(path).targets
    assert target.verify_tls == str(tmp_path / "ca.pem")


@pytest.mark.parametrize("content", [None, b"not a certificate"])
def test_a_missing_or_broken_ca_file_names_its_key(tmp_path: Path, content: bytes | None) -> None:
    if content is not None:
        (tmp_path / "ca.pem").write_bytes(content)
    with pytest.raises(ConfigError, match="PEM file of CA certificates") as caught:
        parse_health_config(
            {"defaults": {"verify_tls": "ca.pem"}, "target": [{"url": "https://a.test/"}]},
            base=tmp_path,
        )
    assert caught.value.key == "defaults.verify_tls"


def test_json_paths_may_be_dotted_keys_or_nested_tables() -> None:
    (target,) = parse_health_config(
        {"target": [{"url": "http://a.test/", "json": {"db": {"connected": True}, "a.b": 1}}]}
    ).targets
    assert target.json == (("db.connected", True), ("a.b", 1))


BAD: list[tuple[dict[str, Any], str]] = [
    ({"target": [{"url": "ftp://a.test/"}]}, "target[0].url"),
    ({"target": [{"name": "x"}]}, "target[0].url"),
    ({"target": [{"url": "http://a.test/", "status": "200"}]}, "target[0].status"),
    ({"target": [{"url": "http://a.test/", "status": [200, "6xx"]}]}, "target[0].status[1]"),
    ({"target": [{"url": "http://a.test/", "status": [True]}]}, "target[0].status[0]"),
    ({"target": [{"url": "http://a.test/", "status": []}]}, "target[0].status"),
    ({"target": [{"url": "http://a.test/", "max_latency_ms": "fast"}]}, "target[0].max_latency_ms"),
    ({"target": [{"url": "http://a.test/", "body_regex": "(unclosed"}]}, "target[0].body_regex"),
    ({"target": [{"url": "http://a.test/", "body_contains": ""}]}, "target[0].body_contains"),
    ({"target": [{"url": "http://a.test/", "headers": {"x": 1}}]}, "target[0].headers.x"),
    ({"target": [{"url": "http://a.test/", "json": {"a..b": 1}}]}, "target[0].json.a..b"),
    ({"target": [{"url": "http://a.test/", "json": []}]}, "target[0].json"),
    ({"target": [{"url": "http://a.test/", "cert_min_days": 14}]}, "target[0].cert_min_days"),
    ({"target": [{"url": "http://a.test/", "method": "DELETE"}]}, "target[0].method"),
    ({"target": [{"url": "http://a.test/", "verify_tls": ""}]}, "target[0].verify_tls"),
    ({"target": [{"url": "http://a.test/", "statuz": 200}]}, "target[0].statuz"),
    ({"target": [{"url": "http://a.test/"}, {"url": "http://a.test/"}]}, "target[1].name"),
    ({"target": [{"url": "http://a.test/", "name": " "}]}, "target[0].name"),
    ({"defaults": {"timeout": 0}, "target": [{"url": "http://a.test/"}]}, "defaults.timeout"),
    ({"target": [{"url": "http://a.test/", "failures": 0}]}, "target[0].failures"),
    ({"defaults": {"successes": "2"}, "target": [{"url": "http://a.test/"}]}, "defaults.successes"),
    (
        {"defaults": {"url": "http://a.test/"}, "target": [{"url": "http://a.test/"}]},
        "defaults.url",
    ),
    ({"defaults": [], "target": [{"url": "http://a.test/"}]}, "defaults"),
    ({"target": []}, "target"),
    ({"targets": [{"url": "http://a.test/"}]}, "targets"),
    ({"target": ["http://a.test/"]}, "target[0]"),
]


@pytest.mark.parametrize(("data", "key"), BAD)
def test_a_bad_value_names_its_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_health_config(data)
    assert caught.value.key == key
    assert str(caught.value).startswith(key)


URL = "http://a.test/"
TARGET_KEYS = "name, url, method, request_headers, timeout, retries, follow_redirects, verify_tls"


@pytest.mark.parametrize(
    ("data", "message"),
    [({"target": [{"urll": URL}]}, f"target[0].urll: unknown key (expected one of: {TARGET_KEYS}, "),
     ({"target": [{"name": "home"}]}, "target[0].url: required (the http:// or https:// URL to check)"),
     # before a bad value of the same target, of [defaults] or of an earlier target
     ({"target": [{"status": "2xy", "urll": URL}]}, "target[0].urll: unknown key"),
     ({"defaults": {"timeout": 0}, "target": [{"urll": URL}]}, "target[0].urll: unknown key"),
     ({"target": [{"url": URL, "status": "2xy"}, {"url": URL, "urll": URL}]}, "target[1].urll: unknown key"),
     ({"defaults": {"timout": 5}, "target": [{"url": URL}]},
      "defaults.timout: unknown key (expected one of: method, request_headers, timeout, "),
     ({"defaults": {"url": URL}, "target": [{"url": URL}]},
      "defaults.url: unknown key (each [[target]] has its own url; expected one of: method, "),
     ({"titel": "x", "target": [{"url": URL}]}, "titel: unknown key (expected one of: title, [defaults], [[target]], [[alert]], [[maintenance]])"),
     ({"title": "x"}, "target: required (at least one [[target]] table)")],
)  # fmt: skip
def test_an_unknown_key_is_named_first_and_a_missing_one_is_required(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_health_config(data)
    assert str(caught.value).startswith(message)
    assert "got" not in str(caught.value)


def test_a_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="an existing TOML file"):
        load_health_config(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[target]\nurl=")
    with pytest.raises(ConfigError, match=re.escape("valid TOML")):
        load_health_config(broken)


def test_the_shipped_example_parses() -> None:
    config = load_health_config(Path(__file__).parent.parent / "config" / "health.toml")
    assert config.title == "Demo shop"
    assert [target.name for target in config.targets] == ["home", "product", "robots"]
