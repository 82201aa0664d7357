"""Alerts of watch mode: ``[[alert]]`` tables, and the notifications a change of a
target's state sends through Apprise (webhooks, Slack, e-mail, Matrix, ...).

One message per change of state, never one per check: DOWN when a target becomes
down, UP when a down target is up again (a target up from the start sends
nothing), and with ``repeat`` a reminder while it stays down. Each URL of an alert
has a notifier of its own, so a dead receiver is retried (with backoff) and
reported on its own, in the background: a notification never holds up the checks.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenacity import AsyncRetrying, retry_if_result, stop_after_attempt, wait_exponential

from crawler.errors import ConfigError
from crawler.health._tables import tables_of, target_names
from crawler.health.history import Change, TargetHistory
from crawler.policy.checks import list_of, positive, string

__all__ = ["Alert", "Alerter", "Notifier", "parse_alerts"]

ATTEMPTS = 4  # per notification: the first and three retries, 1, 2 and 4 s apart
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ALERT_KEYS = ("name", "to", "targets", "repeat")


@dataclass(frozen=True, slots=True)
class Alert:
    """Where to say that targets changed state."""

    name: str
    to: tuple[str, ...]  # Apprise URLs, ${VARIABLES} filled in from the environment
    targets: frozenset[str] | None = None  # None: every target
    repeat: float | None = None  # seconds between reminders while down; None: never

    def covers(self, target: str) -> bool:
        return self.targets is None or target in self.targets


def parse_alerts(
    tables: Any, targets: Iterable[str], environ: Mapping[str, str] = os.environ
) -> tuple[Alert, ...]:
    """The ``[[alert]]`` tables of a health file; ``ConfigError`` names the key."""
    known = set(targets)
    alerts: list[Alert] = []
    for key, table in tables_of("alert", tables, _ALERT_KEYS):
        for required in ("name", "to"):
            if required not in table:
                raise ConfigError(f"{key}.{required}", None, f"{required} (required)")
        urls = list_of(string, "notification URLs")(f"{key}.to", table["to"])
        if not urls:
            raise ConfigError(f"{key}.to", [], "at least one notification URL")
        to = tuple(_fill(f"{key}.to[{n}]", url, environ) for n, url in enumerate(urls))
        for n, url in enumerate(to):
            if not _notifier_for(url):
                raise ConfigError(f"{key}.to[{n}]", urls[n], "a notification URL Apprise "
                                  "knows, such as json://host/path or slack://...")  # fmt: skip
        chosen = None
        if "targets" in table:
            chosen = target_names(f"{key}.targets", table["targets"], known)
        repeat = positive(f"{key}.repeat", table["repeat"]) if "repeat" in table else None
        alerts.append(Alert(string(f"{key}.name", table["name"]), to, chosen, repeat))
    return tuple(alerts)


def _fill(key: str, url: str, environ: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name not in environ:
            raise ConfigError(key, url, "a URL whose ${VARIABLES} are set",
                              problem=f"the environment has no {name}")  # fmt: skip
        return environ[name]

    return _VARIABLE.sub(value, url)


def _notifier_for(url: str) -> Any:
    import apprise

    sender = apprise.Apprise()
    return sender if sender.add(url) else None


Sleep = Callable[[float], Awaitable[None]]


class Notifier:
    """One URL: sends a message, retrying with backoff, and counts what came of it."""

    def __init__(self, alert: str, url: str, *, sleep: Sleep = asyncio.sleep) -> None:
        self.alert = alert
        self._sender = _notifier_for(url)
        # For messages: secrets masked, the options Apprise adds left out.
        self.shown = str(self._sender[0].url(privacy=True)).partition("?")[0]
        self.structured = self.shown.startswith(("json://", "jsons://"))  # a JSON webhook
        self._sleep = sleep
        self.counts: Counter[str] = Counter()  # sent, failed

    async def send(self, title: str, body: str) -> bool:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(ATTEMPTS), wait=wait_exponential(multiplier=1, max=30),
            retry=retry_if_result(lambda ok: not ok), sleep=self._sleep,
            retry_error_callback=lambda state: False,
        )  # fmt: skip
        ok = bool(await retrying(self._notify, title, body))
        self.counts["sent" if ok else "failed"] += 1
        if not ok:
            print(f"crawl: alert {self.alert}: {self.shown} did not take the message "
                  f"{title!r} ({ATTEMPTS} attempts)", file=sys.stderr)  # fmt: skip
        return ok

    async def _notify(self, title: str, body: str) -> bool:
        try:
            return bool(await self._sender.async_notify(title=title, body=body))
        except Exception as exc:  # a plugin's own error: a failed attempt like any other
            print(f"crawl: alert {self.alert}: {self.shown}: {exc!r}", file=sys.stderr)
            return False


class Alerter:
    """The alerts of a watch: ``changed`` after each run, ``remind`` now and then,
    ``aclose`` at the end (messages still being sent get their chance, then go)."""

    def __init__(
        self, alerts: Sequence[Alert], *, page: str | None = None, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.alerts = alerts
        self.page = page  # the status page's URL, when one is served
        self.notifiers = {alert.name: [Notifier(alert.name, url, sleep=sleep)
                                       for url in alert.to] for alert in alerts}  # fmt: skip
        # Targets down, and when each alert last said so (a clock per alert: repeats differ).
        self._down: dict[str, tuple[TargetHistory, dict[str, float]]] = {}
        self._quiet: set[str] = set()  # down targets in a window at the last remind()
        self._sending: set[asyncio.Task[bool]] = set()

    def changed(self, changes: Iterable[Change], now: float) -> None:
        for change in changes:
            target = change.target
            if change.after == "down":
                self._remember(target, now)
                self._announce(target, now)
            elif change.after == "up" and change.before == "down":
                self._down.pop(target.name, None)
                self._quiet.discard(target.name)
                self._announce(target, now)

    def resume(self, targets: Iterable[TargetHistory], now: float) -> None:
        """Targets a restart found DOWN (their DOWN was sent before it): no new DOWN,
        their reminders counted from ``now``, and an UP when they recover."""
        for target in targets:
            if target.state == "down":
                self._remember(target, now)

    def _remember(self, target: TargetHistory, now: float) -> None:
        alerts = [a.name for a in self.alerts if a.covers(target.name)]
        self._down[target.name] = (target, dict.fromkeys(alerts, now))

    def remind(self, now: float, quiet: Callable[[str], bool] = lambda name: False) -> None:
        """Say again that targets are down, for alerts with ``repeat``, when it is time
        (not to targets ``quiet`` names: inside a maintenance window)."""
        for name, (target, said) in self._down.items():
            inside = quiet(name)
            if inside or name in self._quiet:  # in a window, or just out of one:
                said.update(dict.fromkeys(said, now))  # reminders start over from here
                if inside:
                    self._quiet.add(name)
                else:
                    self._quiet.discard(name)
                continue
            due = [a for a in self.alerts if a.name in said and a.repeat is not None
                   and now - said[a.name] >= a.repeat]  # fmt: skip
            if due:
                said.update(dict.fromkeys((a.name for a in due), now))
                self._announce(target, now, only=due, reminder=True)

    async def test(self) -> bool:
        """One test message to every URL of every alert; True when all took it."""
        sends = [notifier.send("crawl check: test message",
                               f"A test of alert {notifier.alert}: it reaches you.")
                 for notifiers in self.notifiers.values() for notifier in notifiers]  # fmt: skip
        return all(await asyncio.gather(*sends))

    def counts(self) -> dict[tuple[str, str], int]:
        """Notifications by (alert, sent|failed), summed over its URLs."""
        totals: Counter[tuple[str, str]] = Counter()
        for alert, notifiers in self.notifiers.items():
            for notifier in notifiers:
                for result in ("sent", "failed"):
                    totals[alert, result] += notifier.counts[result]
        return dict(totals)

    async def aclose(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def _announce(self, target: TargetHistory, now: float, *, only: Sequence[Alert] = (),
                  reminder: bool = False) -> None:  # fmt: skip
        alerts = only or [a for a in self.alerts if a.covers(target.name)]
        title = f"{target.name} is {target.state.upper()}"
        for alert in alerts:
            for notifier in self.notifiers[alert.name]:
                body = message(target, page=self.page, reminder=reminder,
                               structured=notifier.structured)  # fmt: skip
                task = asyncio.ensure_future(notifier.send(title, body))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)


def message(target: TargetHistory, *, page: str | None, reminder: bool, structured: bool) -> str:
    """What a notification says: the target, its state, why, since when, the page.
    For JSON webhooks, whose envelope Apprise fixes, the message is that as JSON."""
    last = target.last
    reason = last.reason if last is not None and target.state == "down" else ""
    since = datetime.fromtimestamp(target.since or 0, UTC).isoformat(timespec="seconds")
    checks = [{"checked_at": r.checked_at, "ok": r.ok, "status": r.status, "reason": r.reason}
              for r in list(target.samples)[-5:]]  # fmt: skip
    if structured:
        return json.dumps({"target": target.name, "url": target.url,
                           "state": target.state.upper(), "reason": reason, "since": since,
                           "reminder": reminder, "checks": checks})  # fmt: skip
    words = "is still" if reminder else "is"
    lines = [f"{target.name} ({target.url}) {words} {target.state.upper()} since {since}."]
    lines += [f"Reason: {reason}"] if reason else []
    lines += [f"Status page: {page}"] if page else []
    return "\n".join(lines)
