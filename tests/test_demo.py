"""``scripts/demo``: it installs only the runtime package, and ``scripts/demo.py`` crawls
the shop it serves itself, never a stranger's server on the port it would like, and
stops that shop on every way out.

Each run is ``scripts/demo.py`` in this venv's Python, with its output in a temporary
folder, while a stranger's HTTP server holds the port the demo tries first."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo.py"
HANG_GUARD = 120  # seconds; a run takes about one
SHOP = {"books": 6, "music": 5, "games": 4}  # scripts/demo_site.py's CATEGORIES
PRODUCTS = {f"{name.title()} item {i}" for name, count in SHOP.items() for i in range(1, count + 1)}
SERVING = re.compile(r"Demo shop on http://127\.0\.0\.1:(\d+)/")


@dataclass
class Stranger:
    """Someone else's HTTP server on 127.0.0.1, counting every connection it accepts."""

    port: int
    connections: list[Any] = field(default_factory=list)


class _StrangerHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<div class='product'><span class='name'>Stranger item</span></div>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stranger() -> Iterator[Stranger]:
    class Server(ThreadingHTTPServer):
        def get_request(self) -> tuple[socket.socket, Any]:
            request = super().get_request()
            seen.connections.append(request[1])
            return request

    with Server(("127.0.0.1", 0), _StrangerHandler) as server:
        seen = Stranger(port=server.server_address[1])
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield seen
        finally:
            server.shutdown()
            thread.join()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "DEMO_PREFERRED_PORT")}
    return {**env, **extra}


def _demo(
    tmp_path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [sys.executable, str(DEMO), "--output", str(tmp_path / "out"), *args],
        cwd=tmp_path, env=_env(**env), capture_output=True, text=True, timeout=HANG_GUARD,
    )  # fmt: skip


def _serving_port(stdout: str) -> int:
    match = SERVING.search(stdout)
    assert match, stdout
    return int(match.group(1))


def _assert_nothing_listens(port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD).close()


def test_script_installs_only_the_runtime_package() -> None:
    script = (ROOT / "scripts" / "demo").read_text()
    code = "\n".join(line.split("#")[0] for line in script.splitlines())
    for heavy in ("apt-get", "apt ", "sudo", "scripts/setup", "[test]", "playwright"):
        assert heavy not in code
    assert re.search(r"^\.venv/bin/python -m pip install --quiet -e \.$", code, re.MULTILINE)
    assert re.search(r"^exec \.venv/bin/python scripts/demo\.py \"\$@\"$", code, re.MULTILINE)


def test_crawls_its_own_shop_when_the_preferred_port_is_taken(
    tmp_path: Path, stranger: Stranger
) -> None:
    config_files = sorted(os.listdir(ROOT / "config"))
    done = _demo(tmp_path, DEMO_PREFERRED_PORT=str(stranger.port))
    assert done.returncode == 0, done.stderr
    port = _serving_port(done.stdout)
    assert port != stranger.port
    assert f"Port {stranger.port} is taken; using {port} instead." in done.stdout
    items = (tmp_path / "out" / "products.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in items]
    assert {record["name"] for record in records} == PRODUCTS
    assert len(records) == len(PRODUCTS)
    assert all(record["url"].startswith(f"http://127.0.0.1:{port}/") for record in records)
    assert "15 items in out/products.jsonl" in done.stdout
    assert "Stats: out/stats.json" in done.stdout
    assert stranger.connections == []
    _assert_nothing_listens(port)
    assert sorted(os.listdir(ROOT / "config")) == config_files  # the port's config was a temp file


@pytest.mark.parametrize("how", ["--port", "PORT"])
def test_an_explicit_port_that_is_taken_is_refused(
    tmp_path: Path, stranger: Stranger, how: str
) -> None:
    if how == "--port":
        done = _demo(tmp_path, "--port", str(stranger.port))
    else:
        done = _demo(tmp_path, PORT=str(stranger.port))
    assert done.returncode == 1
    assert done.stderr.strip() == f"demo: port {stranger.port} is taken"
    assert not (tmp_path / "out").exists()
    assert stranger.connections == []


def test_a_failed_crawl_stops_the_shop_and_exits_with_the_crawls_code(
    tmp_path: Path, stranger: Stranger
) -> None:
    (tmp_path / "out").write_text("a file where the output folder should be")
    done = _demo(tmp_path, DEMO_PREFERRED_PORT=str(stranger.port))
    assert done.returncode == 1, done.stderr
    assert "crawl: fatal" in done.stderr
    assert "items in" not in done.stdout
    _assert_nothing_listens(_serving_port(done.stdout))
    assert stranger.connections == []


def test_ctrl_c_stops_the_shop(tmp_path: Path, stranger: Stranger) -> None:
    demo = subprocess.Popen(
        [sys.executable, str(DEMO), "--output", str(tmp_path / "out")],
        cwd=tmp_path, env=_env(DEMO_PREFERRED_PORT=str(stranger.port)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with demo:
        assert demo.stdout is not None
        lines = []
        while not (lines and SERVING.search(lines[-1])):
            line = demo.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        demo.send_signal(signal.SIGINT)
        _, stderr = demo.communicate(timeout=HANG_GUARD)
    # 130 unless the whole crawl finished between the line and the signal.
    assert demo.returncode in (130, 0), stderr
    _assert_nothing_listens(_serving_port(lines[-1]))
    assert stranger.connections == []
