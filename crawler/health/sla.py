"""``crawl check --report 30d``: each target's uptime over a period against its
objective (``slo``), the error budget left, its incidents and latency percentiles,
read from the monitor's history file; as a table for people or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.table import Table
from rich.text import Text

from crawler.health.report import console_for
from crawler.health.targets import Target
from crawler.health.uptime import Incident, Uptime

__all__ = ["SlaReport", "SlaRow", "render_sla_json", "render_sla_table", "sla_report"]

_QUANTILES = (0.5, 0.95, 0.99)
_DASH = "\u2013"


@dataclass(frozen=True, slots=True)
class SlaRow:
    """One target over the period. ``budget_left`` is the share of the failures the
    objective allows that are still unspent: 1 with none, 0 when all are spent,
    negative past it."""

    target: str
    url: str
    slo: float | None  # percent
    checks: int  # outside maintenance windows
    failures: int
    incidents: tuple[Incident, ...]
    downtime: float  # seconds DOWN within the period
    latency: dict[str, float | None]  # "p50", "p95", "p99": seconds, bucket upper bounds

    @property
    def uptime(self) -> float | None:
        return 1 - self.failures / self.checks if self.checks else None

    @property
    def met(self) -> bool | None:
        uptime = self.uptime
        if self.slo is None or uptime is None:
            return None
        return uptime * 100 >= self.slo

    @property
    def budget_left(self) -> float | None:
        if self.slo is None or not self.checks:
            return None
        allowed = self.checks * (1 - self.slo / 100)
        return 1 - self.failures / allowed


@dataclass(frozen=True, slots=True)
class SlaReport:
    """The rows, and the time they cover: from ``since`` (``now - period``, or the
    start of the hour or day that holds it, for periods past 48 h or 30 d) to ``now``."""

    since: float
    now: float
    rows: list[SlaRow]


def sla_report(
    uptime: Uptime, targets: Sequence[Target], *, period: float, now: float
) -> SlaReport:
    """The report's rows, in the file's order of targets."""
    names = [target.name for target in targets]
    since, totals = uptime.totals(names, now, period)
    incidents = uptime.incidents(names, since=since)
    rows = []
    for target in targets:
        found = totals.get(target.name)
        own = tuple(i for i in reversed(incidents) if i.target == target.name)
        histogram = found.latency if found else None
        latency = {f"p{round(q * 100)}": histogram.quantile(q) if histogram else None
                   for q in _QUANTILES}  # fmt: skip
        rows.append(SlaRow(
            target.name, target.url, target.slo, found.checks if found else 0,
            found.failures if found else 0, own,
            sum(incident.overlap(since, now) for incident in own), latency,
        ))  # fmt: skip
    return SlaReport(since, now, rows)


def _percent(share: float | None, digits: int = 3) -> str:
    return _DASH if share is None else f"{share * 100:.{digits}f}%"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    unit, size = ("h", 3600) if seconds < 86400 else ("d", 86400)
    return f"{seconds / size:.1f}".removesuffix(".0") + f" {unit}"


def _ms(seconds: float | None) -> str:
    return _DASH if seconds is None else f"{seconds * 1000:.0f} ms"


def render_sla_table(report: SlaReport, file: TextIO) -> None:
    console = console_for(file)
    rows = report.rows
    span = _duration(report.now - report.since)
    table = Table(title=f"SLA over {span}: {_utc(report.since)} to {_utc(report.now)}")
    for name in ("target", "uptime", "slo", "budget left", "incidents", "downtime",
                 "p50", "p95", "p99", "checks"):  # fmt: skip
        table.add_column(name, justify="left" if name == "target" else "right")
    for row in rows:
        met = row.met
        style = "" if met is None else "green" if met else "red"
        table.add_row(
            Text(row.target), Text(_percent(row.uptime), style=style),
            _DASH if row.slo is None else f"{row.slo:g}%", _percent(row.budget_left, 1),
            str(len(row.incidents)), _duration(row.downtime) if row.incidents else _DASH,
            *(_ms(row.latency[key]) for key in ("p50", "p95", "p99")), f"{row.checks:,}",
        )  # fmt: skip
    console.print(table)
    missed = [row.target for row in rows if row.met is False]
    if missed:
        console.print(Text(f"{len(missed)} below objective: {', '.join(missed)}"))


def render_sla_json(report: SlaReport, file: TextIO) -> None:
    """One JSON document: the time covered, then a record per target (Unix times, seconds)."""
    document: dict[str, Any] = {
        "from": report.since,
        "to": report.now,
        "targets": [
            {
                "target": row.target,
                "url": row.url,
                "slo": row.slo,
                "met": row.met,
                "uptime": row.uptime,
                "budget_left": row.budget_left,
                "checks": row.checks,
                "failures": row.failures,
                "downtime_s": round(row.downtime, 3),
                "latency_s": row.latency,
                "incidents": [
                    {"started": i.started, "ended": i.ended, "reason": i.reason}
                    for i in row.incidents
                ],
            }
            for row in report.rows
        ],
    }
    file.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def _utc(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M UTC")
