"""Alerts to people through group-robot webhooks (企业微信 / 钉钉 markdown). A failing robot never blocks a sweep."""

from __future__ import annotations

import datetime as dt
import logging
import random
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from classifier.config import Rules
from service.labels import ALERT_KINDS, CLOCKS, zh
from service.notify.models import Alert
from service.redaction import redact
from service.retry import Backoff
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
    return f"> {zh(CLOCKS, alert.clock)}时限：{due_text}"


def markdown(alert: Alert, ticket: Ticket, rules: Rules) -> tuple[str, str]:
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


def deliver_alerts(
    engine: Engine,
    rules: Rules,
    webhooks: dict[str, list[str]],
    *,
    now: dt.datetime,
    client: httpx.Client | None = None,
    limit: int = 200,
) -> dict[str, int]:
    """Send pending alerts to the office's robots and the dispatchers' robots; returns counts."""
    counts = {"sent": 0, "failed": 0, "no_target": 0}
    http = client or httpx.Client(timeout=5)
    try:
        with Session(engine, expire_on_commit=False) as session:
            pending = session.exec(
                select(Alert)
                .where(Alert.state == "pending", col(Alert.next_attempt_at) <= now)
                .order_by(col(Alert.id))
                .limit(limit)
            ).all()
            for alert in pending:
                ticket = session.get(Ticket, alert.ticket_id)
                targets = [*webhooks.get(alert.office or "", []), *webhooks.get("dispatcher", [])]
                if ticket is None or not targets:
                    alert.state = "no_target"
                    counts["no_target"] += 1
                    session.add(alert)
                    continue
                title, text = markdown(alert, ticket, rules)
                errors = post_markdown(http, targets, title, text)
                alert.attempts += 1
                if not errors:
                    alert.state = "sent"
                    counts["sent"] += 1
                else:
                    alert.last_error = "; ".join(errors)[:500]
                    alert.state = "failed" if alert.attempts >= MAX_ATTEMPTS else "pending"
                    alert.next_attempt_at = now + ALERT_BACKOFF.delay(alert.attempts, _RNG)
                    counts["failed"] += 1
                session.add(alert)
                session.commit()
    except Exception:  # people's notifications are best effort: log and let the sweep go on
        log.exception("alert_delivery_failed")
    finally:
        if client is None:
            http.close()
    return counts
