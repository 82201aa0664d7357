"""The status page's own style and script, and the Content-Security-Policy that
allows exactly them. The script mirrors ``page.py``'s server-side renderers: both
draw from ``status_json``, so the page looks the same before and after a refresh."""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CONTENT_SECURITY_POLICY", "SCRIPT", "STYLE"]

STYLE = """
:root{color-scheme:light dark;--fg:#1f2328;--bg:#fff;--muted:#656d76;--line:#d0d7de;
--up:#1a7f37;--down:#cf222e;--pending:#9a6700;--on-badge:#fff}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#8d96a0;
--line:#30363d;--up:#3fb950;--down:#f85149;--pending:#d29922;--on-badge:#0d1117}}
body{margin:0 auto;max-width:75rem;padding:1.5rem;background:var(--bg);color:var(--fg);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{margin:0;font-size:1.4rem}
#summary{margin:.25rem 0;font-size:1.2rem;font-weight:600}
#summary[data-state=up]{color:var(--up)}#summary[data-state=down]{color:var(--down)}
.meta{margin:0;color:var(--muted)}
#lost{padding:.5rem .75rem;border:1px solid var(--down);border-radius:6px;color:var(--down)}
.scroll{overflow-x:auto}
table{width:100%;margin-top:1rem;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:.5rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top;
white-space:nowrap}
td:nth-child(2){white-space:normal}
th{color:var(--muted);font-size:.8rem;font-weight:500;white-space:nowrap}
a{color:inherit}
.badge{display:inline-block;min-width:4.5em;border-radius:1em;text-align:center;
font-size:.75rem;font-weight:700;color:var(--on-badge);background:var(--pending)}
[data-state=up] .badge{background:var(--up)}[data-state=down] .badge{background:var(--down)}
[data-state=maintenance] .badge{background:var(--muted)}
.reason{color:var(--down);font-size:.85rem;overflow-wrap:anywhere}
.strip{display:flex;justify-content:flex-end;gap:1px;width:16rem;height:1.4rem}
.strip span{flex:1;max-width:.4rem;min-width:1px;border-radius:1px;background:var(--up)}
.strip .down{background:var(--down)}
h2{margin:2rem 0 0;font-size:1.1rem}
.days{display:flex;gap:1px;width:22rem;height:1.4rem}
.days span{flex:1;min-width:1px;border-radius:1px;background:var(--line)}
.days .up{background:var(--up)}.days .down{background:var(--down)}
.days .degraded{background:var(--pending)}.days .maintenance{background:var(--muted)}
"""

SCRIPT = """
(() => {
  const period = Number(document.body.dataset.refresh) * 1000;
  const title = document.body.dataset.title;
  const days = Number(document.body.dataset.days);
  const dash = "\\u2013";
  const clock = (t) => new Date(t * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  const round = (x) => Math.floor(x + 0.5);  // as the server's _round, halves up
  const span = (s) => s < 90 ? round(Math.max(s, 0)) + " s"
    : s < 5400 ? round(s / 60) + " min"
    : s < 172800 ? round(s / 3600) + " h" : round(s / 86400) + " d";
  const ago = (s) => span(s) + " ago";
  const percent = (share) => share === null ? dash : (round(share * 10000) / 100).toFixed(2) + "%";
  const latency = (ms) => ms === null ? dash : round(ms) + " ms";
  const tip = (s) => clock(s.checked_at) + " \\u00b7 "
    + (s.ok ? s.status + " \\u00b7 " + latency(s.latency_ms) : s.reason);
  // Attributes and text nodes only: server text never reaches an HTML parser.
  const el = (tag, attributes, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    node.append(...children);
    return node;
  };
  const row = (t) => {
    const name = /^https?:\\/\\//i.test(t.url) ? el("a", {href: t.url}, t.name) : t.name;
    const target = el("td", {}, name);
    if (t.state === "down" && t.reason) target.append(el("div", {class: "reason"}, t.reason));
    const failed = t.samples.filter((s) => !s.ok).length;
    const bars = t.samples.map((s) => el("span", {class: s.ok ? "up" : "down", title: tip(s)}));
    const label = failed + " of " + t.samples.length + " recent checks failed";
    return el("tr", {"data-target": t.name, "data-state": t.state},
      el("td", {}, el("span", {class: "badge"}, t.state.toUpperCase())),
      target,
      el("td", {}, t.status === null ? dash : String(t.status)),
      el("td", {}, latency(t.latency_ms)),
      el("td", {}, latency(t.p50_ms)),
      el("td", {}, latency(t.p95_ms)),
      el("td", {}, t.uptime === null ? dash : (round(t.uptime * 1000) / 10).toFixed(1) + "%"),
      el("td", {}, el("div", {class: "strip", role: "img", "aria-label": label}, ...bars)));
  };
  const dayTip = (d) => d.date + " \u00b7 " + (d.state === "none" ? "no checks"
    : d.state === "maintenance" ? "maintenance"
    : percent(d.uptime) + (d.state === "down" ? " \u00b7 down" : ""));
  const daysLabel = (days) => "last " + days.length + " days: "
    + days.filter((d) => d.state === "down").length + " down, "
    + days.filter((d) => d.state === "degraded").length + " with failed checks";
  const uptimeRow = (t) => el("tr", {"data-uptime": t.name},
    el("td", {}, t.name),
    ...Object.values(t.uptimes).map((share) => el("td", {}, percent(share))),
    el("td", {}, el("div", {class: "days", role: "img", "aria-label": daysLabel(t.days)},
      ...t.days.map((d) => el("span", {class: d.state, title: dayTip(d)})))));
  const incidentRow = (i) => el("tr",
    {"data-incident": i.target, "data-ongoing": String(i.ended === null)},
    el("td", {}, i.target),
    el("td", {}, clock(i.started)),
    el("td", {}, (i.ended === null ? "ongoing, " : "") + span(i.duration_s)),
    el("td", {}, el("span", {class: "reason"}, i.reason)));
  const render = (data) => {
    document.getElementById("targets").replaceChildren(...data.targets.map(row));
    document.getElementById("history").hidden = !data.history;
    document.getElementById("uptime").replaceChildren(...data.targets.map(uptimeRow));
    document.getElementById("incidents").replaceChildren(...(data.incidents.length
      ? data.incidents.map(incidentRow)
      : [el("tr", {}, el("td", {colspan: "4"}, "No incidents in the last " + days + " days"))]));
    const summary = document.getElementById("summary");
    // A live region: rewriting unchanged text would re-announce it on every refresh.
    if (summary.textContent !== data.summary) summary.textContent = data.summary;
    summary.dataset.state = data.state;
    document.getElementById("checked").textContent = data.last_check === null ? "No checks yet"
      : "Last check " + clock(data.last_check) + " (" + ago(data.now - data.last_check) + ")";
    document.title = data.state === "down" ? data.summary + " \\u00b7 " + title : title;
  };
  const refresh = async () => {
    try {
      const signal = AbortSignal.timeout(10000);
      const response = await fetch("status.json", {cache: "no-store", signal});
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
      document.getElementById("lost").hidden = true;
    } catch {
      document.getElementById("lost").hidden = false;
    }
    setTimeout(refresh, period);
  };
  setTimeout(refresh, period);
})();
"""


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


# Allows exactly this page's own style and script, so markup that ever slipped past
# escaping still could not run; ``status.json`` is fetched relative to the page.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_sha256(SCRIPT)}; style-src {_sha256(STYLE)}; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
