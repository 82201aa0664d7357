"""Health results for each reader: a table for people, JSON lines for scripts,
JUnit XML for CI and the Prometheus text format for scrapers."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TextIO

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.samples import Sample
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table
from rich.text import Text

from crawler.health.history import History, TargetHistory
from crawler.health.result import HealthResult

__all__ = ["console_for", "render_json", "render_junit", "render_prometheus", "render_table"]

# Characters XML 1.0 forbids or a terminal acts on; servers choose what they send.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

_QUANTILES = (0.5, 0.9, 0.99)
_LABELS = ("target", "url")

# A pipe has no edge: each row stays one whole line, for logs and grep.
_PIPE_WIDTH = 1000


def _clean(text: str) -> str:
    return _UNSAFE.sub("\ufffd", text)


def _line(text: str) -> str:
    """One table row per result, even when a name or message holds line breaks."""
    return " ".join(_clean(text).split())


def console_for(file: TextIO) -> Console:
    """Colour and the terminal's width on a terminal; elsewhere plain text, never wrapped."""
    tty = file.isatty()
    return Console(
        file=file, width=None if tty else _PIPE_WIDTH, color_system="auto" if tty else None
    )


def _utc(timestamp: float, layout: str) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime(layout)


def render_table(
    results: Sequence[HealthResult], file: TextIO, *, footer: str | None = None
) -> None:
    """Colour and the terminal's width on a terminal; elsewhere plain text, never wrapped.
    The last line counts the results (``4 checked, 1 failed``) unless ``footer`` says
    more: a link check lists only the broken links, of the many it checked."""
    console = console_for(file)
    named = any(result.name != result.url for result in results)
    cert = any(result.cert_days is not None for result in results)
    linked = any(result.linked_from for result in results)
    table = Table()
    if named:
        table.add_column("target", overflow="fold")
    # On a narrow terminal the other columns wrap first: a cut URL cannot be followed.
    table.add_column("url", no_wrap=True)
    table.add_column("status", justify="right")
    table.add_column("latency", justify="right")
    table.add_column("size", justify="right")
    table.add_column("final url", no_wrap=True)
    if cert:
        table.add_column("cert days", justify="right")
    table.add_column("result", overflow="fold")
    if linked:
        table.add_column("linked from", overflow="fold")
    for result in results:
        final = result.final_url if result.final_url not in (None, result.url) else None
        cells = [
            _line(result.url),
            "-" if result.status is None else str(result.status),
            f"{round(result.latency * 1000)} ms",
            "" if result.size is None else decimal(result.size),
            _line(final or ""),
        ]
        if named:
            cells.insert(0, _line(result.name))
        if cert:
            cells.append("" if result.cert_days is None else f"{result.cert_days:.1f}")
        verdict = (
            Text("OK", style="green")
            if result.ok
            else Text(f"FAIL {_line(result.reason)}", style="red")
        )
        # Text, not str: rich would read brackets in a URL or message as markup.
        row = [*(Text(cell) for cell in cells), verdict]
        if linked:
            row.append(Text("\n".join(_line(page) for page in result.linked_from)))
        table.add_row(*row)
    console.print(table)
    if footer is None:
        failed = sum(not result.ok for result in results)
        footer = f"{len(results):,} checked, {failed:,} failed"
    console.print(Text(footer))


def render_json(results: Sequence[HealthResult], file: TextIO) -> None:
    for result in results:
        record = {
            "name": result.name,
            "url": result.url,
            "ok": result.ok,
            "status": result.status,
            "latency_ms": round(result.latency * 1000, 1),
            "size": result.size,
            "final_url": result.final_url,
            "error": result.error,
            "message": result.message,
            "reason": result.reason,
            "failures": [
                {"condition": f.condition, "expected": f.expected, "seen": f.seen}
                for f in result.failures
            ],
            "cert_days": None if result.cert_days is None else round(result.cert_days, 2),
            # The "Z" form, which jq's fromdateiso8601 and most log tools accept.
            "checked_at": _utc(result.checked_at, "%Y-%m-%dT%H:%M:%SZ"),
        }
        if result.linked_from:
            record["linked_from"] = list(result.linked_from)
        file.write(json.dumps(record, ensure_ascii=False) + "\n")


def render_junit(
    results: Sequence[HealthResult], file: TextIO, *, suite: str = "crawl check"
) -> None:
    """Each target is a test case, so CI shows which one failed and why."""
    root = ET.Element("testsuites")
    testsuite = ET.SubElement(
        root,
        "testsuite",
        name=_clean(suite),
        tests=str(len(results)),
        failures=str(sum(not result.ok for result in results)),
        errors="0",
        time=f"{sum(result.latency for result in results):.3f}",
    )
    if results:
        # The JUnit schema's timestamp has no zone; this one is UTC.
        started = min(result.checked_at for result in results)
        testsuite.set("timestamp", _utc(started, "%Y-%m-%dT%H:%M:%S"))
    for result in results:
        case = ET.SubElement(
            testsuite,
            "testcase",
            name=_clean(result.name),
            classname="crawl.check",
            time=f"{result.latency:.3f}",
        )
        if result.ok:
            continue
        failure = ET.SubElement(
            case, "failure", message=_clean(result.reason), type=result.error or "condition"
        )
        lines = [str(f) for f in result.failures]
        lines.append(f"url: {result.url}")
        lines.append(f"status: {'-' if result.status is None else result.status}")
        if result.final_url not in (None, result.url):
            lines.append(f"final url: {result.final_url}")
        lines += [f"linked from: {page}" for page in result.linked_from]
        failure.text = _clean("\n".join(lines))
    ET.indent(root)
    file.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    file.write(ET.tostring(root, encoding="unicode") + "\n")


_Sample = Callable[[TargetHistory, HealthResult], float | None]  # None: no sample
_METRICS: tuple[tuple[type[GaugeMetricFamily | CounterMetricFamily], str, str, _Sample], ...] = (
    (GaugeMetricFamily, "crawl_check_up", "Whether the last check passed (1) or failed (0).",
     lambda target, last: float(last.ok)),
    (GaugeMetricFamily, "crawl_check_down",
     "Whether the target is down (1): failed `failures` checks in a row, not yet up again.",
     lambda target, last: None if target.shown == "pending" else float(target.shown == "down")),
    (GaugeMetricFamily, "crawl_check_maintenance",
     "Whether the target is inside a maintenance window (1): checked, never alerted.",
     lambda target, last: float(target.maintenance)),
    (GaugeMetricFamily, "crawl_check_status_code", "HTTP status of the last check's response.",
     lambda target, last: last.status),
    (GaugeMetricFamily, "crawl_check_latency_seconds",
     "Seconds the last check took, redirects included.", lambda target, last: last.latency),
    (GaugeMetricFamily, "crawl_check_response_size_bytes",
     "Body bytes of the last check's final response.", lambda target, last: last.size),
    (GaugeMetricFamily, "crawl_check_cert_expiry_timestamp_seconds",
     "Unix time the TLS certificate expires, as of the last check (blackbox_exporter's "
     "probe_ssl_earliest_cert_expiry).", lambda target, last: last.cert_expires),
    (GaugeMetricFamily, "crawl_check_failed_conditions", "Conditions the last check failed.",
     lambda target, last: len(last.failures)),
    (CounterMetricFamily, "crawl_check_runs_total", "Checks run since the monitor started.",
     lambda target, last: target.runs),
    (CounterMetricFamily, "crawl_check_failures_total",
     "Checks that failed since the monitor started.", lambda target, last: target.failures),
    (GaugeMetricFamily, "crawl_check_uptime_ratio", "Share of the recent checks that passed.",
     lambda target, last: target.uptime()),
)  # fmt: skip


def _add_summary(family: SummaryMetricFamily, values: list[str], target: TargetHistory) -> None:
    """prometheus_client's summary takes a count and a sum; its quantiles are samples."""
    latencies = [r.latency for r in target.samples if r.status is not None]
    if not latencies:
        return
    labels = dict(zip(_LABELS, values, strict=True))
    for q in _QUANTILES:
        if (seconds := target.latency_quantile(q)) is not None:
            family.samples.append(Sample(family.name, {**labels, "quantile": str(q)}, seconds))
    family.add_metric(values, count_value=len(latencies), sum_value=sum(latencies))


class _HistoryCollector:
    def __init__(self, history: History, notifications: Mapping[tuple[str, str], int]) -> None:
        self._history = history
        self._notifications = notifications

    def collect(self) -> Iterator[Metric]:
        labels = list(_LABELS)
        families = [(kind(name, text, labels=labels), sample)
                    for kind, name, text, sample in _METRICS]  # fmt: skip
        recent = SummaryMetricFamily(
            "crawl_check_recent_latency_seconds",
            "Latency of the recent checks that got a response, with quantiles.",
            labels=labels,
        )
        for target in self._history.targets():
            last = target.last
            if last is None:  # listed, not yet checked
                continue
            values = [target.name, target.url]
            for family, sample in families:
                value = sample(target, last)
                if value is not None:
                    family.add_metric(values, value)
            _add_summary(recent, values, target)
        yield from (family for family, _ in families)
        yield recent
        if self._notifications:
            sent = CounterMetricFamily("crawl_check_notifications",
                                       "Alert notifications, by alert and result (sent, failed).",
                                       labels=["alert", "result"])  # fmt: skip
            for (alert, result), count in sorted(self._notifications.items()):
                sent.add_metric([alert, result], count)
            yield sent


def render_prometheus(
    history: History, *, notifications: Mapping[tuple[str, str], int] | None = None
) -> str:
    """A private registry, so the process's own default metrics stay out;
    ``notifications`` (by alert and ``sent``/``failed``) when alerts are configured."""
    registry = CollectorRegistry()
    registry.register(_HistoryCollector(history, notifications or {}))
    return generate_latest(registry).decode()
