"""Memory and throughput of the SQLite frontier grown to N distinct URLs, as a crawl grows it.

    .venv/bin/python benchmarks/frontier_scale.py [--target 1000000] [--new 20] \
        [--dups 40] [--batch 256] [--drain 100000] [--trace] [--json FILE] [--dir DIR]

A simulated crawl through SqliteFrontier's own API (as benchmarks/frontier_size.py):
push one seed, then repeatedly ``lease(batch)`` and answer the lease with one
``commit(Batch(done=leased, links=...))``, as the Committer does. Each leased page
"links" NEW never-seen URLs (until TARGET distinct URLs exist) and DUPS already-seen
ones: the category's first pages (navigation), its recent neighbours, old URLs at
random (far beyond the frontier's 32,768-entry fingerprint shortcut), and
non-canonical spellings of old URLs (query parameters in the other order, or a
#fragment), which must dedup to the same row. Nothing per URL is kept by this
script: URL i is a pure function of i.

Measured: VmRSS and VmHWM (/proc/self/status), SQLite's own heap
(sqlite3_memory_used via ctypes), file sizes (db, -wal, -shm), when seen crosses
each mark; lease and commit seconds per call (first/last tenth of the growth
phase, and a drain phase at full size); dedup exactness (every new link
reported new, every duplicate reported old, stats.seen == distinct, COUNT(*) ==
distinct, and a final re-push of old URLs that must add nothing).
--trace: tracemalloc snapshots at the first and last mark, top 15 by size and by growth.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import ctypes
import gc
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from crawler.frontier import Batch, SqliteFrontier
from crawler.models import Lineage, Request
from crawler.urls import canonicalize

SITE = Path(__file__).resolve().parent / "site.py"
CATEGORIES = 50
COLORS = ("black", "blue", "green", "grey", "navy", "red", "white")
REFS = ("home-featured", "related", "search", "category-top", "newsletter", "recently-viewed")
MARKS = (100_000, 200_000, 500_000, 1_000_000)


def _words() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The benchmark shop's words (benchmarks/site.py), read without importing it."""
    found = {}
    for node in ast.parse(SITE.read_text()).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id in ("_WORD_TEXT", "_NOUN_TEXT"):
            found[target.id] = ast.literal_eval(node.value).split()
    return tuple(found["_WORD_TEXT"]), tuple(found["_NOUN_TEXT"])


WORDS, NOUNS = _words()


def _mix(i: int) -> int:
    x = (i * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    x = (x * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 29)


def url_of(i: int, variant: int = 0) -> str:
    """URL i (canonical when variant == 0); variant 1: the same page spelt otherwise."""
    h = _mix(i)
    cat = i % CATEGORIES
    base = (
        f"https://shop.example/category-{cat}/{WORDS[h % len(WORDS)]}-"
        f"{WORDS[(h >> 8) % len(WORDS)]}-{NOUNS[(h >> 16) % len(NOUNS)]}-{i:07d}.html"
    )
    if (h >> 24) % 5 == 0:  # a fifth carry a query
        color, ref = COLORS[(h >> 32) % len(COLORS)], REFS[(h >> 40) % len(REFS)]
        if variant:
            return f"{base}?ref={ref}&color={color}"  # unsorted: canonicalises to the other
        return f"{base}?color={color}&ref={ref}"
    return f"{base}#reviews" if variant else base


def status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) * 1024
    return out


def io() -> dict[str, int]:
    """Bytes this process asked to read and write (syscalls) and sent to storage."""
    out = {}
    with open("/proc/self/io") as f:
        for line in f:
            k, v = line.split(":")
            if k in ("rchar", "wchar", "read_bytes", "write_bytes"):
                out["io_" + k] = int(v)
    return out


_lib = ctypes.CDLL("libsqlite3.so.0")  # the library _sqlite3 is linked to (same handle)
_lib.sqlite3_memory_used.restype = ctypes.c_int64
_lib.sqlite3_memory_highwater.restype = ctypes.c_int64
_lib.sqlite3_memory_highwater.argtypes = [ctypes.c_int]


def sizes(path: Path) -> dict[str, int]:
    return {
        s: (Path(str(path) + s).stat().st_size if Path(str(path) + s).exists() else 0)
        for s in ("", "-wal", "-shm")
    }


def mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def tenths(calls: list[float], pages: list[int], unit: str = "pages") -> dict[str, float]:
    """pages/s and median ms per call over the first and last tenth of calls."""
    n = max(len(calls) // 10, 1)
    out: dict[str, float] = {}
    if not calls:
        return out
    for name, sl in (("first", slice(0, n)), ("last", slice(-n, None))):
        c, p = calls[sl], pages[sl]
        out[f"{name}_{unit}_per_s"] = sum(p) / sum(c) if sum(c) else 0.0
        out[f"{name}_median_ms"] = 1000 * statistics.median(c)
    out[f"all_{unit}_per_s"] = sum(pages) / sum(calls) if sum(calls) else 0.0
    out["calls"] = len(calls)
    return out


class Sim:
    def __init__(self, args: argparse.Namespace, frontier: SqliteFrontier, path: Path):
        self.args, self.frontier, self.path = args, frontier, path
        self.next_new = 0  # URLs 0 .. next_new-1 have been pushed (distinct)
        self.links_pushed = 0
        self.dups_pushed = 0
        self.wrong_new = 0  # a duplicate reported as new (dedup miss)
        self.wrong_old = 0  # a new URL reported as seen (a false positive)
        self.marks: list[dict] = []
        self.snapshots: dict[int, tracemalloc.Snapshot] = {}
        self.grow = {
            "lease": [],
            "lease_pages": [],
            "commit": [],
            "commit_pages": [],
            "commit_links": [],
        }
        self.drain = {
            "lease": [],
            "lease_pages": [],
            "commit": [],
            "commit_pages": [],
            "commit_links": [],
        }
        self.pages_done = 0
        self.rng_state = 12345

    def rand(self, n: int) -> int:
        self.rng_state = _mix(self.rng_state)
        return self.rng_state % n

    def links_for(self, page: Request, page_i: int, grow: bool) -> tuple[list[Request], list[bool]]:
        a = self.args
        depth = page.lineage.depth + 1
        lineage = Lineage(depth, "page", page.url)
        links, expect = [], []
        if grow:
            for _ in range(a.new):
                if self.next_new >= a.target:
                    break
                links.append(Request(url_of(self.next_new), lineage=lineage))
                expect.append(True)
                self.next_new += 1
        seen = self.next_new
        for k in range(a.dups):
            kind = k % 4
            if kind == 0:  # navigation: the first pages of the categories
                j = (k // 4) % min(CATEGORIES, seen)
            elif kind == 1:  # neighbours in the category (recent rows)
                j = page_i + CATEGORIES * (k // 4 - 5)  # same category: i % 50 == cat
                if not 0 <= j < seen:
                    j = self.rand(seen)
            else:  # anywhere, at random: mostly outside the fingerprint shortcut
                j = self.rand(seen)
            links.append(Request(url_of(j, 1 if kind == 3 else 0), lineage=lineage))
            expect.append(False)
        return links, expect

    async def step(self, grow: bool) -> int:
        rec = self.grow if grow else self.drain
        t0 = time.perf_counter()
        lease = await self.frontier.lease(self.args.batch)
        t1 = time.perf_counter()
        if not lease.requests:
            return 0
        links, expect = [], []
        for req in lease.requests:
            page_i = int(req.url.split("?")[0].rsplit("-", 1)[1].split(".")[0])
            ls, ex = self.links_for(req, page_i, grow)
            links += ls
            expect += ex
        t2 = time.perf_counter()
        added = await self.frontier.commit(Batch(done=lease.requests, links=links))
        t3 = time.perf_counter()
        for a, e in zip(added, expect, strict=True):
            if a and not e:
                self.wrong_new += 1
            elif e and not a:
                self.wrong_old += 1
        n = len(lease.requests)
        self.pages_done += n
        self.links_pushed += len(links)
        self.dups_pushed += expect.count(False)
        rec["lease"].append(t1 - t0)
        rec["lease_pages"].append(n)
        rec["commit"].append(t3 - t2)
        rec["commit_pages"].append(n)
        rec["commit_links"].append(len(links))
        return n

    async def mark(self, label: str | int) -> None:
        gc.collect()
        st = await self.frontier.stats()
        info = canonicalize.cache_info()
        m = {
            "label": label,
            "seen": st.seen,
            "pending": st.pending,
            "done": st.done,
            "t": time.perf_counter() - self.t_start,
            **status(),
            "sqlite_heap": _lib.sqlite3_memory_used(),
            "sqlite_heap_high": _lib.sqlite3_memory_highwater(0),
            **io(),
            "canon_cache": info.currsize,
            **{"file" + k: v for k, v in sizes(self.path).items()},
        }
        if tracemalloc.is_tracing():
            cur, peak = tracemalloc.get_traced_memory()
            m["traced"], m["traced_peak"] = cur, peak
        self.marks.append(m)
        print(
            f"[{m['t']:7.1f}s] {label}: seen {st.seen:,} done {st.done:,} "
            f"RSS {mib(m['VmRSS'])} MiB HWM {mib(m['VmHWM'])} MiB anon {mib(m['RssAnon'])} "
            f"file {mib(m['RssFile'])} shm {mib(m['RssShmem'])} sqlite {mib(m['sqlite_heap'])} "
            f"db {mib(m['file'])}+wal {mib(m['file-wal'])}+shm {mib(m['file-shm'])} MiB"
            + (f" traced {mib(m['traced'])} MiB" if "traced" in m else ""),
            file=sys.stderr,
            flush=True,
        )
        if tracemalloc.is_tracing() and label in (MARKS[0], self.args.target):
            self.snapshots[label] = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )

    async def run(self) -> dict:
        a = self.args
        self.t_start = time.perf_counter()
        await self.frontier.push([Request(url_of(0))])
        self.next_new = 1
        await self.mark("start")
        marks = [m for m in MARKS if m <= a.target]
        if a.target not in marks:
            marks.append(a.target)
        # growth: until TARGET distinct URLs are seen
        while self.next_new < a.target:
            if not await self.step(grow=True):
                raise RuntimeError("frontier ran dry before the target")
            while marks and self.next_new >= marks[0]:
                await self.mark(marks.pop(0))
        grow_s = time.perf_counter() - self.t_start
        # drain: lease and commit at full size, duplicate links only
        drained, t0 = 0, time.perf_counter()
        while drained < a.drain:
            n = await self.step(grow=False)
            if not n:
                break
            drained += n
        drain_s = time.perf_counter() - t0
        await self.mark("after drain")
        # dedup exactness: re-push old URLs, both spellings, random and the very first ones
        st0 = await self.frontier.stats()
        again = [Request(url_of(j, v)) for j in range(0, 2000) for v in (0, 1)]
        again += [Request(url_of(self.rand(a.target), v)) for _ in range(10_000) for v in (0, 1)]
        added = await self.frontier.push(again)
        st1 = await self.frontier.stats()
        # the frontier's counters against the table itself, and distinct fingerprints
        db = sqlite3.connect(self.path)
        rows = db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        end_sizes = sizes(self.path)
        return {
            "args": vars(a) | {"json": str(a.json), "dir": str(a.dir)},
            "sqlite": sqlite3.sqlite_version,
            "python": sys.version.split()[0],
            "distinct_pushed": self.next_new,
            "links_pushed": self.links_pushed,
            "dup_links_pushed": self.dups_pushed,
            "pages_done": self.pages_done,
            "wrong_new": self.wrong_new,
            "wrong_old": self.wrong_old,
            "seen_before_repush": st0.seen,
            "repushed": len(again),
            "repush_added": sum(added),
            "seen_after_repush": st1.seen,
            "table_rows": rows,
            "grow_s": grow_s,
            "drain_s": drain_s,
            "drained": drained,
            "grow_lease": tenths(self.grow["lease"], self.grow["lease_pages"]),
            "grow_commit": tenths(self.grow["commit"], self.grow["commit_pages"]),
            "grow_commit_links_per_s": tenths(
                self.grow["commit"], self.grow["commit_links"], "links"
            ),
            "drain_lease": tenths(self.drain["lease"], self.drain["lease_pages"]),
            "drain_commit": tenths(self.drain["commit"], self.drain["commit_pages"]),
            "drain_commit_links_per_s": tenths(
                self.drain["commit"], self.drain["commit_links"], "links"
            ),
            "marks": self.marks,
            "end_sizes": end_sizes,
            "url_chars_mean": statistics.fmean(len(url_of(i)) for i in range(0, a.target, 97)),
        }


def trace_report(snaps: dict[int, tracemalloc.Snapshot]) -> str:
    keys = sorted(snaps)
    first, last = snaps[keys[0]], snaps[keys[-1]]
    lines = [f"## tracemalloc at {keys[-1]:,} seen: top 15 by size"]
    for s in last.statistics("lineno")[:15]:
        lines.append(f"{s.size / 1024:10.1f} KiB {s.count:9,} blocks  {s.traceback}")
    lines.append(f"## growth {keys[0]:,} -> {keys[-1]:,}: top 15 by size_diff")
    for s in last.compare_to(first, "lineno")[:15]:
        lines.append(
            f"{s.size_diff / 1024:+10.1f} KiB (now {s.size / 1024:.1f} KiB, "
            f"{s.count_diff:+,} blocks)  {s.traceback}"
        )
    total = lambda sn: sum(t.size for t in sn.traces)  # noqa: E731
    lines.append(f"total traced: {total(first) / 2**20:.1f} MiB -> {total(last) / 2**20:.1f} MiB")
    return "\n".join(lines)


def fresh_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "frontier.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


async def amain(args: argparse.Namespace) -> dict:
    path = fresh_file(args.dir)
    if args.trace:
        tracemalloc.start(args.frames)
    async with SqliteFrontier(path) as frontier:
        sim = Sim(args, frontier, path)
        result = await sim.run()
    if args.trace:
        result["trace"] = trace_report(sim.snapshots)
        print(result["trace"], file=sys.stderr)
        tracemalloc.stop()
    result["final_status"] = status()
    return result


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--target", type=int, default=1_000_000)
    p.add_argument("--new", type=int, default=20, help="new URLs linked per page")
    p.add_argument("--dups", type=int, default=40, help="already-seen URLs linked per page")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--drain", type=int, default=100_000, help="pages leased after growth")
    p.add_argument("--trace", action="store_true")
    p.add_argument("--frames", type=int, default=1)
    p.add_argument("--dir", type=Path, default=Path(tempfile.mkdtemp(prefix="frontier-scale-")))
    p.add_argument("--keep", action="store_true", help="keep the frontier file")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    result = asyncio.run(amain(args))
    ok = (
        result["wrong_new"] == 0
        and result["wrong_old"] == 0
        and result["repush_added"] == 0
        and result["seen_after_repush"]
        == result["seen_before_repush"]
        == result["distinct_pushed"]
        == result["table_rows"]
    )
    result["dedup_exact"] = ok
    text = json.dumps(result, indent=1, default=str)
    if args.json:
        args.json.write_text(text + "\n")
    printable = {k: v for k, v in result.items() if k not in ("marks", "trace")}
    print(json.dumps(printable, indent=1, default=str))
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
