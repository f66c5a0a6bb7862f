"""Alerts to people through group-robot webhooks (企业微信 / 钉钉 markdown). A failing robot never blocks a sweep."""

from __future__ import annotations

import datetime as dt
import logging
import random
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.deadlines.calendar import WorkCalendar
from service.deadlines.service import DeadlinePolicy
from service.labels import ALERT_KINDS, CLOCKS, zh
from service.notify.models import Alert
from service.redaction import redact
from service.retry import Backoff
from service.rules import ServiceRules
from service.tickets.models import Ticket

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# alerts retry on the callbacks' schedule: about 2, 4, 8, 16 minutes
ALERT_BACKOFF = Backoff(base_seconds=120, max_seconds=3600)
_RNG = random.Random()
SUMMARY_CHARS = 40


def _clock_line(alert: Alert, ticket: Ticket, zone: ZoneInfo) -> str:
    if alert.kind == "hotspot":
        return f"> 原因：{ticket.hotspot_reason or '同一楼栋同类工单多发'}"
    due = ticket.first_contact_due if alert.clock == "contact" else ticket.resolve_due
    due_text = due.astimezone(zone).strftime("%Y-%m-%d %H:%M") if due else "-"
    line = f"> {zh(CLOCKS, alert.clock)}时限：{due_text}"
    if alert.kind == "escalated" and ticket.supervise_due is not None:
        line += f"　督办时限：{ticket.supervise_due.astimezone(zone).strftime('%Y-%m-%d %H:%M')}"
    return line


def markdown(alert: Alert, ticket: Ticket, rules: ServiceRules) -> tuple[str, str]:
    """(title, body) without personal data: the summary goes through the one redaction (numbers, names, rooms)."""
    category = rules.categories[ticket.category].name if ticket.category in rules.categories else "-"
    office = rules.office_name(ticket.office) if ticket.office in rules.offices else "-"
    title = f"【{zh(ALERT_KINDS, alert.kind)}】工单 {ticket.external_id}"
    names = (ticket.caller_name,) if ticket.caller_name else ()
    summary = redact(ticket.title or ticket.content, names=names)
    if len(summary) > SUMMARY_CHARS:
        summary = summary[: SUMMARY_CHARS - 1] + "…"
    body = (
        f"### {title}\n"
        f"> 类别：{category}　承办：{office}\n"
        f"{_clock_line(alert, ticket, ZoneInfo(rules.timezone))}\n"
        f"> 摘要：{summary}\n"
    )
    return title, body


def robot_body(url: str, title: str, text: str) -> dict[str, object]:
    if "dingtalk" in url:
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    return {"msgtype": "markdown", "markdown": {"content": text}}


def post_markdown(http: httpx.Client, urls: list[str], title: str, text: str) -> list[str]:
    """Send one markdown message to each group robot; the reasons of those that failed (empty when all took it)."""
    errors = []
    for url in urls:
        try:
            response = http.post(url, json=robot_body(url, title, text))
            if response.status_code >= 300:
                errors.append(f"HTTP {response.status_code}")
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
    return errors


def in_alert_window(rules: ServiceRules, calendar: WorkCalendar, now: dt.datetime) -> bool:
    """Whether robots may post non-urgent alerts now (rules' `notify.alert_window`, local time)."""
    window = rules.notify.alert_window
    if window is None:
        return True
    local = now.astimezone(ZoneInfo(rules.timezone))
    if window.working_days_only and not calendar.is_workday(local.date()):
        return False
    return window.start <= local.time() < window.end


def digest(items: list[tuple[Alert, Ticket]], rules: ServiceRules) -> tuple[str, str]:
    """One message for several alerts: a line per ticket, each as redacted as a single alert."""
    title = f"【提醒汇总】{len(items)} 件工单"
    lines = [f"### {title}"]
    for alert, ticket in items:
        _, body = markdown(alert, ticket, rules)
        heading, *facts = body.rstrip("\n").split("\n")
        lines.append("- " + heading.removeprefix("### ") + "：" + "；".join(f.removeprefix("> ") for f in facts))
    return title, "\n".join(lines) + "\n"


def _message(items: list[tuple[Alert, Ticket]], rules: ServiceRules) -> tuple[str, str]:
    return markdown(*items[0], rules) if len(items) == 1 else digest(items, rules)


def _due_alerts(session: Session, *, now: dt.datetime, urgent_only: bool, limit: int) -> list[tuple[Alert, Ticket]]:
    query = (
        select(Alert, Ticket)
        .join(Ticket, col(Ticket.id) == col(Alert.ticket_id))
        .where(Alert.state == "pending", col(Alert.next_attempt_at) <= now)
    )
    if urgent_only:
        query = query.where(col(Ticket.is_urgent).is_(True))
    return list(session.exec(query.order_by(col(Alert.id)).limit(limit)).all())


def _batches(
    items: list[tuple[Alert, Ticket]], webhooks: dict[str, list[str]], size: int
) -> list[tuple[list[str], list[tuple[Alert, Ticket]]]]:
    """(robot URLs, alerts) per message: each office's robots get that office's alerts, the dispatchers' robots
    all of them, at most `size` alerts a message."""
    groups: dict[str, list[tuple[Alert, Ticket]]] = {}
    for item in items:
        groups.setdefault(item[0].office or "", []).append(item)
    groups["dispatcher"] = list(items)
    out = []
    for target, members in groups.items():
        urls = webhooks.get(target, []) if target != "" else []
        for i in range(0, len(members), size):
            if urls:
                out.append((urls, members[i : i + size]))
    return out


def deliver_alerts(
    engine: Engine,
    rules: ServiceRules,
    webhooks: dict[str, list[str]],
    *,
    now: dt.datetime,
    client: httpx.Client | None = None,
    limit: int = 200,
    calendar: WorkCalendar | None = None,
) -> dict[str, int]:
    """Send due alerts to the office's robots and the dispatchers' robots; returns counts.

    Outside the rules' alert window only urgent tickets' alerts go out; the rest wait for the window and then go out
    together, one message per robot (at most `notify.batch_max` tickets each) rather than one per ticket."""
    counts = {"sent": 0, "failed": 0, "no_target": 0, "held": 0}
    http = client or httpx.Client(timeout=5)
    calendar = calendar or DeadlinePolicy(rules).calendar
    try:
        with Session(engine, expire_on_commit=False) as session:
            open_window = in_alert_window(rules, calendar, now)
            items = _due_alerts(session, now=now, urgent_only=not open_window, limit=limit)
            if not open_window:
                counts["held"] = _count_held(session, now=now)
            routed = []
            for alert, ticket in items:
                if [*webhooks.get(alert.office or "", []), *webhooks.get("dispatcher", [])]:
                    routed.append((alert, ticket))
                else:
                    alert.state = "no_target"
                    counts["no_target"] += 1
                    session.add(alert)
            errors: dict[int, list[str]] = {}
            for urls, members in _batches(routed, webhooks, rules.notify.batch_max):
                failed = post_markdown(http, urls, *_message(members, rules))
                for alert, _ in members:
                    errors.setdefault(alert.id or 0, []).extend(failed)
            for alert, _ in routed:
                _record(alert, errors.get(alert.id or 0, []), now, counts)
                session.add(alert)
            session.commit()
    except Exception:  # people's notifications are best effort: log and let the sweep go on
        log.exception("alert_delivery_failed")
    finally:
        if client is None:
            http.close()
    return counts


def _count_held(session: Session, *, now: dt.datetime) -> int:
    query = (
        select(func.count())
        .select_from(Alert)
        .join(Ticket, col(Ticket.id) == col(Alert.ticket_id))
        .where(Alert.state == "pending", col(Alert.next_attempt_at) <= now, col(Ticket.is_urgent).is_(False))
    )
    return int(session.exec(query).one())


def _record(alert: Alert, errors: list[str], now: dt.datetime, counts: dict[str, int]) -> None:
    alert.attempts += 1
    if not errors:
        alert.state = "sent"
        counts["sent"] += 1
        return
    alert.last_error = "; ".join(errors)[:500]
    alert.state = "failed" if alert.attempts >= MAX_ATTEMPTS else "pending"
    alert.next_attempt_at = now + ALERT_BACKOFF.delay(alert.attempts, _RNG)
    counts["failed"] += 1
