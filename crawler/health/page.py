"""The status page of watch mode: one self-contained HTML document that reads at a
glance without JavaScript and, with it, keeps itself current from ``/status.json``.

Both renderers, this module's and the page's script, draw from the same
``status_json`` data, so the page looks the same before and after a refresh.
"""

from __future__ import annotations

import math
import time
from html import escape
from typing import Literal, TypedDict

from crawler.health.history import History, TargetHistory
from crawler.health.page_assets import CONTENT_SECURITY_POLICY, SCRIPT, STYLE
from crawler.health.store import DAY
from crawler.health.uptime import WINDOWS, Day, DayState, Incident, Uptime

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DEFAULT_REFRESH",
    "DayJson",
    "IncidentJson",
    "SampleJson",
    "StatusJson",
    "TargetJson",
    "render_page",
    "status_json",
]

DEFAULT_REFRESH = 5.0  # seconds between the page's refreshes when the check interval is unknown
DAYS = 90  # the daily bar's length
INCIDENTS = 20  # the latest incidents of those days, listed

State = Literal["up", "down", "pending", "maintenance"]


class SampleJson(TypedDict):
    checked_at: float
    ok: bool
    status: int | None
    latency_ms: float | None  # None when no response came back
    reason: str


class DayJson(TypedDict):
    date: str  # UTC, YYYY-MM-DD
    state: DayState
    uptime: float | None


class IncidentJson(TypedDict):
    target: str
    started: float
    ended: float | None  # None while it lasts
    duration_s: float
    reason: str


class TargetJson(TypedDict):
    name: str
    url: str
    state: State
    status: int | None
    latency_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    uptime: float | None  # share of the kept samples that passed, 0 to 1
    reason: str
    checked_at: float | None
    runs: int
    failures: int
    samples: list[SampleJson]  # oldest first
    uptimes: dict[str, float | None]  # "24h", "7d", "30d", "90d": from the history file
    days: list[DayJson]  # the last 90 UTC days, oldest first; empty without a history file


class StatusJson(TypedDict):
    now: float
    interval: float | None
    state: State  # down if any target is, pending until something was checked
    summary: str
    last_check: float | None
    history: bool  # whether a history file backs uptimes, days and incidents
    targets: list[TargetJson]
    incidents: list[IncidentJson]  # the latest of the last 90 days, latest first


def status_json(
    history: History, *, interval: float | None, now: float, uptime: Uptime | None = None
) -> StatusJson:
    """What the page shows, for its own refreshes and for scripts: Unix times,
    latencies in ms; ``uptime`` reads the history file, when there is one."""
    names = [target.name for target in history.targets()]
    windows = uptime.windows(names, now) if uptime else {}
    days = uptime.days(names, now, DAYS) if uptime else {}
    incidents = uptime.incidents(names, since=now - DAYS * DAY, limit=INCIDENTS) if uptime else []
    targets = [
        _target_json(target, windows.get(target.name, {}), days.get(target.name, []))
        for target in history.targets()
    ]
    down = sum(target["state"] == "down" for target in targets)
    checked = [t["checked_at"] for t in targets if t["checked_at"] is not None]
    state: State
    if down:
        state, summary = "down", f"{down} of {len(targets)} down"
    elif checked:
        state, summary = "up", "All systems up"
    else:
        state, summary = "pending", "Waiting for the first check"
    return {
        "now": now,
        "interval": interval,
        "state": state,
        "summary": summary,
        "last_check": max(checked, default=None),
        "history": uptime is not None,
        "targets": targets,
        "incidents": [_incident_json(incident, now) for incident in incidents],
    }


def _incident_json(incident: Incident, now: float) -> IncidentJson:
    return {
        "target": incident.target,
        "started": incident.started,
        "ended": incident.ended,
        "duration_s": round(incident.duration(now), 3),
        "reason": incident.reason,
    }


def _day_json(day: Day) -> DayJson:
    date = time.strftime("%Y-%m-%d", time.gmtime(day.start))
    return {"date": date, "state": day.state, "uptime": day.uptime}


def _target_json(
    target: TargetHistory, windows: dict[str, float | None], days: list[Day]
) -> TargetJson:
    samples: list[SampleJson] = [
        {
            "checked_at": result.checked_at,
            "ok": result.ok,
            "status": result.status,
            "latency_ms": _ms(result.latency) if result.status is not None else None,
            "reason": result.reason,
        }
        for result in target.samples
    ]
    return {
        "name": target.name,
        "url": target.url,
        "state": target.shown,
        "status": samples[-1]["status"] if samples else None,
        "latency_ms": samples[-1]["latency_ms"] if samples else None,
        "p50_ms": _ms(target.latency_quantile(0.5)),
        "p95_ms": _ms(target.latency_quantile(0.95)),
        "uptime": target.uptime(),
        "reason": samples[-1]["reason"] if samples else "",
        "checked_at": samples[-1]["checked_at"] if samples else None,
        "runs": target.runs,
        "failures": target.failures,
        "samples": samples,
        "uptimes": {label: windows.get(label) for label, _ in WINDOWS},
        "days": [_day_json(day) for day in days],
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


# -- server-side rendering; page_assets.SCRIPT mirrors each helper ----------------------

_DASH = "\u2013"


def _clock(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))


def _round(x: float) -> int:
    """Halves up, as the page's script rounds (Python's round() takes halves to even)."""
    return math.floor(x + 0.5)


def _span(seconds: float) -> str:
    if seconds < 90:
        return f"{_round(max(seconds, 0))} s"
    if seconds < 5400:
        return f"{_round(seconds / 60)} min"
    if seconds < 172800:
        return f"{_round(seconds / 3600)} h"
    return f"{_round(seconds / 86400)} d"


def _ago(seconds: float) -> str:
    return _span(seconds) + " ago"


def _percent(share: float | None) -> str:
    return _DASH if share is None else f"{_round(share * 10000) / 100:.2f}%"


def _latency(ms: float | None) -> str:
    return _DASH if ms is None else f"{_round(ms)} ms"


def _checked(status: StatusJson) -> str:
    last = status["last_check"]
    if last is None:
        return "No checks yet"
    return f"Last check {_clock(last)} ({_ago(status['now'] - last)})"


def _tip(sample: SampleJson) -> str:
    if sample["ok"]:
        seen = f"{sample['status']} \u00b7 {_latency(sample['latency_ms'])}"
    else:
        seen = sample["reason"]
    return f"{_clock(sample['checked_at'])} \u00b7 {seen}"


def _row(target: TargetJson) -> str:
    name = escape(target["name"])
    # Only web URLs become links: a javascript: URL in a config must not run on click.
    if target["url"].lower().startswith(("http://", "https://")):
        name = f'<a href="{escape(target["url"])}">{name}</a>'
    reason = target["reason"] if target["state"] == "down" else ""
    if reason:
        name += f'<div class="reason">{escape(reason)}</div>'
    samples = target["samples"]
    failed = sum(not sample["ok"] for sample in samples)
    bars = "".join(
        f'<span class="{"up" if s["ok"] else "down"}" title="{escape(_tip(s))}"></span>'
        for s in samples
    )
    uptime = target["uptime"]
    cells = [
        f'<span class="badge">{target["state"].upper()}</span>',
        name,
        _DASH if target["status"] is None else str(target["status"]),
        _latency(target["latency_ms"]),
        _latency(target["p50_ms"]),
        _latency(target["p95_ms"]),
        _DASH if uptime is None else f"{_round(uptime * 1000) / 10:.1f}%",
        f'<div class="strip" role="img" aria-label="{failed} of {len(samples)} recent checks'
        f' failed">{bars}</div>',
    ]
    return _tr(f'data-target="{escape(target["name"])}" data-state="{target["state"]}"', cells)


def _tr(attributes: str, cells: list[str]) -> str:
    return f"<tr {attributes}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _day_tip(day: DayJson) -> str:
    if day["state"] == "none":
        seen = "no checks"
    elif day["state"] == "maintenance":
        seen = "maintenance"
    else:
        seen = _percent(day["uptime"]) + (" \u00b7 down" if day["state"] == "down" else "")
    return f"{day['date']} \u00b7 {seen}"


def _days_label(days: list[DayJson]) -> str:
    down = sum(day["state"] == "down" for day in days)
    degraded = sum(day["state"] == "degraded" for day in days)
    return f"last {len(days)} days: {down} down, {degraded} with failed checks"


def _uptime_row(target: TargetJson) -> str:
    days = target["days"]
    bars = "".join(
        f'<span class="{day["state"]}" title="{escape(_day_tip(day))}"></span>' for day in days
    )
    cells = [
        escape(target["name"]),
        *(_percent(share) for share in target["uptimes"].values()),
        f'<div class="days" role="img" aria-label="{_days_label(days)}">{bars}</div>',
    ]
    return _tr(f'data-uptime="{escape(target["name"])}"', cells)


def _incident_row(incident: IncidentJson) -> str:
    ongoing = incident["ended"] is None
    lasted = ("ongoing, " if ongoing else "") + _span(incident["duration_s"])
    cells = [
        escape(incident["target"]),
        _clock(incident["started"]),
        lasted,
        f'<span class="reason">{escape(incident["reason"])}</span>',
    ]
    ongoing_attribute = str(ongoing).lower()
    return _tr(
        f'data-incident="{escape(incident["target"])}" data-ongoing="{ongoing_attribute}"', cells
    )


def _incident_rows(incidents: list[IncidentJson]) -> str:
    if not incidents:
        return f'<tr><td colspan="4">No incidents in the last {DAYS} days</td></tr>'
    return "\n".join(_incident_row(incident) for incident in incidents)


def render_page(
    history: History,
    *,
    title: str,
    interval: float | None,
    now: float,
    uptime: Uptime | None = None,
) -> str:
    """The whole document, rendered server-side so it works without JavaScript too."""
    status = status_json(history, interval=interval, now=now, uptime=uptime)
    heading = escape(title)
    every = f" \u00b7 checks every {interval:g} s" if interval else ""
    tab = f"{status['summary']} \u00b7 {title}" if status["state"] == "down" else title
    headers = ["State", "Target", "Status", "Latency", "p50", "p95", "Recent uptime",
               "Recent checks"]  # fmt: skip
    history_headers = ["Target", "24 h", "7 d", "30 d", "90 d", f"Last {DAYS} days"]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(tab)}</title>\n<style>{STYLE}</style></head>\n"
        f'<body data-title="{heading}" data-refresh="{interval or DEFAULT_REFRESH:g}"'
        f' data-days="{DAYS}">\n'
        f"<header><h1>{heading}</h1>\n"
        f'<p id="summary" role="status" data-state="{status["state"]}">{status["summary"]}</p>\n'
        f'<p class="meta"><span id="checked">{_checked(status)}</span>{every}</p></header>\n'
        '<p id="lost" role="alert" hidden>Connection lost: showing the last data received;'
        " retrying.</p>\n"
        '<main class="scroll"><table><thead><tr>'
        + "".join(f'<th scope="col">{header}</th>' for header in headers)
        + '</tr></thead>\n<tbody id="targets">\n'
        + "\n".join(_row(target) for target in status["targets"])
        + "\n</tbody></table></main>\n"
        + f'<section id="history"{"" if status["history"] else " hidden"}>'
        + '<h2>Uptime</h2>\n<div class="scroll"><table><thead><tr>'
        + "".join(f'<th scope="col">{header}</th>' for header in history_headers)
        + '</tr></thead>\n<tbody id="uptime">\n'
        + "\n".join(_uptime_row(target) for target in status["targets"])
        + "\n</tbody></table></div>\n<h2>Incidents</h2>\n"
        + '<div class="scroll"><table><thead><tr>'
        + "".join(f'<th scope="col">{h}</th>' for h in ("Target", "Started", "Lasted", "Reason"))
        + '</tr></thead>\n<tbody id="incidents">\n'
        + _incident_rows(status["incidents"])
        + "\n</tbody></table></div></section>\n"
        + f"<script>{SCRIPT}</script>\n</body></html>\n"
    )
