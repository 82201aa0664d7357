"""The README says what works, and it does: every Python block in it runs as written, as
a program of its own, against the demo shop on a loopback port; the ``crawl --help``
it quotes is the command's; every option its command lines show exists."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.cli.args import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DEMO_ORIGIN = "127.0.0.1:8000"  # where the README's examples find the demo shop
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == language]


PYTHON_BLOCKS = blocks("python")


@contextlib.contextmanager
def project_copy(tmp_path: Path, shop: str) -> Iterator[Path]:
    """A folder laid out as a clone is (config/, sites/), the demo's address replaced."""
    for folder in ("config",):
        (tmp_path / folder).mkdir()
        for path in (ROOT / folder).glob("*.toml"):
            text = path.read_text(encoding="utf-8").replace(DEMO_ORIGIN, shop)
            (tmp_path / folder / path.name).write_text(text, encoding="utf-8")
    yield tmp_path


def test_the_readme_has_python_examples() -> None:
    assert len(PYTHON_BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_every_python_block_runs_as_written(index: int, demo_shop: str, tmp_path: Path) -> None:
    source = PYTHON_BLOCKS[index]
    assert DEMO_ORIGIN in source or "config/demo.toml" in source, "it talks to the demo shop"
    with project_copy(tmp_path, demo_shop) as folder:
        program = folder / f"example_{index}.py"
        program.write_text(source.replace(DEMO_ORIGIN, demo_shop), encoding="utf-8")
        env = {**os.environ, "PYTHONWARNINGS": "error"}
        done = subprocess.run([sys.executable, program.name], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, f"block {index}:\n{source}\nstderr:\n{done.stderr}"
    assert done.stdout.strip(), "every example prints what it got"


def test_the_install_lines_name_our_distribution() -> None:
    import tomllib

    name = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    assert name != "crawler", "that name on the package index is another project"
    assert f"pip install '{name}[fast]'" in README
    assert "pip install -e '.[fast]'" in README  # from a clone
    assert "pip install 'crawler" not in README


def test_the_quoted_help_is_the_commands() -> None:
    quoted = [body for body in blocks("text") if body.startswith("$ crawl --help\n")]
    assert len(quoted) == 1, "the README quotes `crawl --help` once"
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-m", "crawler", "--help"], env=env,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    expected = done.stdout.replace("usage: __main__.py", "usage: crawl")
    assert quoted[0].removeprefix("$ crawl --help\n") == expected


def _command_lines() -> list[list[str]]:
    lines = []
    for body in blocks("sh"):
        for line in body.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("crawl "):
                lines.append(shlex.split(line.replace("[", " ").replace("]", " ")))
    return lines


def _options_of(command: str | None) -> set[str]:
    parser = build_parser()
    if command is not None:
        subparsers = next(a for a in parser._actions if a.dest == "command")
        parser = subparsers.choices[command]  # type: ignore[attr-defined]
    return {option for action in parser._actions for option in action.option_strings}


def test_every_option_the_readme_shows_exists() -> None:
    commands = {"fetch", "ping", "check", "run", "worker", "status", "extract"}
    lines = _command_lines()
    assert len(lines) >= 8
    for words in lines:
        command = words[1] if words[1] in commands else "run"
        known = _options_of(command)
        for word in words[2:]:
            if word.startswith("-") and word != "-":
                assert word.split("=", 1)[0] in known, f"{' '.join(words)}: no {word}"
