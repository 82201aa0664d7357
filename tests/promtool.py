"""Prometheus's own linter on our text format: ``promtool check metrics`` (Debian's
``prometheus`` package, which ``scripts/setup`` installs) rejects what a scraper
would accept but its conventions forbid (units, quantile labels, counter names)."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def assert_promtool_accepts(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package)")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
