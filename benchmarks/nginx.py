"""The generated shop as static files behind Debian's nginx, on 127.0.0.1.

``compare.py`` uses it: the issue's reference numbers were measured against nginx,
and a Python server (``site.py``, about 650 pages/s) would be the bottleneck for the
bare-client baselines. Everything nginx writes (pid file, logs, temp files) stays in
one folder; it runs in the foreground (``daemon off;``) as a child of the harness, so
it is stopped by its own pid.

The access log has one line per request, ``host<TAB>status<TAB>request URI``, so the
harness can count requests per page, for what robots.txt disallows (``/private/``,
``/cart``, ``/account/``, ``sessionid=``) and to other host names.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import harness

HOST = "127.0.0.1"
START_TIMEOUT = 10.0  # seconds for nginx to accept connections
STOP_GRACE = 10.0  # seconds for a graceful stop (SIGQUIT) before SIGTERM, then SIGKILL
SYSTEM_PID_FILE = Path("/run/nginx.pid")  # where Debian's packaged service keeps its pid


def find_nginx() -> str | None:
    # /usr/sbin is not on every user's PATH.
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def ensure_nginx() -> str:
    """The nginx binary; installed with apt-get when missing and this runs as root.

    A package install may start the packaged service (where no policy-rc.d forbids
    it): that process is then this harness's doing, and is stopped by its pid.
    """
    found = find_nginx()
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("nginx is not installed: run `sudo apt-get install -y nginx` first")
    had_service = SYSTEM_PID_FILE.exists()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "nginx"]):
        result = subprocess.run(step, env=env, capture_output=True, check=False)
        if result.returncode != 0:
            tail = result.stderr.decode(errors="replace")[-1500:]
            raise RuntimeError(f"{' '.join(step)} failed ({result.returncode}): {tail}")
    if not had_service and SYSTEM_PID_FILE.exists():
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(SYSTEM_PID_FILE.read_text().strip()), signal.SIGQUIT)
    found = find_nginx()
    if not found:
        raise RuntimeError("apt-get installed nginx, but no nginx binary was found")
    return found


def free_port() -> int:
    """A port free now. The pages name their port, so it is chosen before they are
    written and before nginx binds it; nothing else here takes ports meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def write_config(folder: Path, root: Path, port: int) -> Path:
    """FOLDER/nginx.conf serving ROOT (written by ``ShopSite.write_static``) on PORT.

    ``/search?q=I&page=1&sort=price``, its parameters in any order, is
    ``ROOT/search/I.html``; other queries on ``/search`` (another page or sort, a ``q``
    that is no page number) are 404, as on ``site.py``. Buffered access log: a write per
    request would cost the server a syscall each. No ``open_file_cache``: it keeps a
    descriptor per cached file, and past ``ulimit -n`` (20,000 here) files answer 404.
    """
    temp = folder / "temp"
    temp.mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    temp_paths = "\n".join(
        f"    {kind}_temp_path {temp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config.write_text(
        f"""daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;

events {{
    worker_connections 1024;
}}

http {{
{temp_paths}
    types {{
        text/html html;
        text/plain txt;
        application/xml xml;
        application/javascript js;
        application/json json;
    }}
    default_type application/octet-stream;
    charset utf-8;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    server_tokens off;
    log_format bench '$host\\t$status\\t$request_uri';
    access_log {folder / "access.log"} bench buffer=256k flush=10s;

    server {{
        listen {HOST}:{port} backlog=1024;
        server_name _;
        root {root};
        index index.html;

        location = /search {{
            if ($arg_page != "1") {{
                return 404;
            }}
            if ($arg_sort != "price") {{
                return 404;
            }}
            if ($arg_q !~ "^(0|[1-9][0-9]*)$") {{
                return 404;
            }}
            try_files /search/$arg_q.html =404;
        }}
        location / {{
            try_files $uri $uri/ =404;
        }}
    }}
}}
""",
        encoding="utf-8",
    )
    return config


def start(
    processes: harness.LaunchedProcesses, binary: str, config: Path, port: int
) -> subprocess.Popen[bytes]:
    """nginx in the foreground, in a session of its own; returned once PORT accepts
    connections. ``-e``: the error log from the very start, not the compiled-in path."""
    folder = config.parent
    with (folder / "nginx.stderr").open("wb") as stderr:
        child = processes.start(
            [binary, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
        )  # fmt: skip
    processes.group(child)  # a SIGKILL must reach its worker too
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if child.poll() is not None:
            raise RuntimeError(f"nginx exited with {child.returncode}: {_tail(folder)}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return child
        if time.monotonic() > deadline:
            processes.stop(child)
            raise RuntimeError(f"nginx did not listen in {START_TIMEOUT:.0f} s: {_tail(folder)}")
        time.sleep(0.02)


def _tail(folder: Path) -> str:
    texts = (folder / name for name in ("nginx.stderr", "error.log"))
    return " | ".join(p.read_text(errors="replace")[-800:].strip() for p in texts if p.exists())


def stop(processes: harness.LaunchedProcesses, child: subprocess.Popen[bytes]) -> None:
    """Graceful stop by pid (SIGQUIT: the worker flushes its log buffer as it exits),
    then the harness's SIGTERM and SIGKILL if that hangs."""
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGQUIT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(STOP_GRACE)
    processes.stop(child)


def workers_cpu_s(master: int) -> float:
    """User + sys seconds of the master's children (the worker) so far, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master:  # fields[1] is the ppid
                total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def read_log(path: Path) -> Iterator[tuple[str, int, str]]:
    """``(host, status, request URI)`` for every logged request."""
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            host, status, uri = line.rstrip("\n").split("\t", 2)
            yield host, int(status), uri
