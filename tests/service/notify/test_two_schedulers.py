"""Two scheduler processes (plus a raw sender without the job lock) against one PostgreSQL database:
every callback is sent exactly once."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from classifier.decision import Classifier
from service.auth.models import Role
from service.db import make_engine
from service.deadlines.service import DeadlinePolicy
from service.flows.lifecycle import Lifecycle
from service.flows.receive import intake
from service.notify.models import OutboxMessage
from service.rules import ServiceRules
from service.tickets.models import TicketCreate
from service.tickets.service import Actor
from tests.conftest import ROOT, SECRET
from tests.service.notify.receiver import Receiver, running

RAW_SENDER = """
import datetime as dt, sys, time
from service.db import make_engine
from service.notify.service import DeliveryPolicy, deliver_due
engine = make_engine(sys.argv[1])
policy = DeliveryPolicy(url=sys.argv[2], secret=sys.argv[3], timeout=5)
end = time.monotonic() + float(sys.argv[4])
while time.monotonic() < end:
    deliver_due(engine, policy, now=lambda: dt.datetime.now(dt.UTC), limit=5)
    time.sleep(0.05)
"""


def _seed(url: str, rules: ServiceRules, classifier: Classifier, tickets: int) -> int:
    engine = make_engine(url)
    policy = DeadlinePolicy(rules)
    office = Actor("平安办", Role.office, "pingan")
    dispatcher = Actor("派单员", Role.dispatcher)
    with Session(engine, expire_on_commit=False) as s:
        for i in range(tickets):
            payload = TicketCreate(
                external_id=f"TWO{i}",
                received_at=dt.datetime.now(dt.UTC),
                channel="电话",
                content="上南二村有二房东按床位出租，住了十几个人",
            )
            t, _ = intake(session=s, payload=payload, classifier=classifier, policy=policy, rules=rules)
            assert t.id is not None
            life = Lifecycle(session=s, rules=rules, policy=policy)
            if t.state == "pending_review":
                life.perform(ticket_id=t.id, action="confirm", actor=dispatcher, body={})
            for action, body in (("accept", {}), ("contact", {}), ("resolve", {"result": "实际解决", "note": "好"})):
                life.perform(ticket_id=t.id, action=action, actor=office, body=body)
    engine.dispose()
    return tickets * 3


@pytest.mark.real_clock
def test_no_duplicate_deliveries(pg_url: str, rules: ServiceRules, classifier: Classifier, tmp_path: Path) -> None:
    from tests.conftest import _truncate_pg

    _truncate_pg(pg_url)
    expected = _seed(pg_url, rules, classifier, tickets=15)
    receiver = Receiver(secret=SECRET, delay=0.02)
    with running(receiver):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        env.update(
            {
                "HOTLINE_DATABASE_URL": pg_url,
                "HOTLINE_WEBHOOK_SECRET": SECRET,
                "HOTLINE_CALLBACK_URL": receiver.url,
                "HOTLINE_OUTBOX_INTERVAL_SECONDS": "1",
                "HOTLINE_SWEEP_INTERVAL_SECONDS": "1",
                "HOTLINE_RULES": str(ROOT / "rules.yaml"),
                "HOTLINE_MODEL": str(ROOT / "models" / "street"),
                "PYTHONPATH": str(ROOT),
            }
        )
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "service.cli", "scheduler"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        procs.append(
            subprocess.Popen([sys.executable, "-c", RAW_SENDER, pg_url, receiver.url, SECRET, "25"], env=env, cwd=ROOT)
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(receiver.keys_seen) < expected:
            time.sleep(0.5)
        time.sleep(2)  # give a late duplicate the chance to show up
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    assert len(receiver.acted) == expected
    assert len(receiver.keys_seen) == expected, "a callback was sent twice"
    engine = make_engine(pg_url)
    with Session(engine) as s:
        assert all(m.state == "delivered" for m in s.exec(select(OutboxMessage)))
    engine.dispose()
    by_ticket: dict[int, list[str]] = {}
    for p in receiver.order:
        by_ticket.setdefault(p["ticket_id"], []).append(p["event"])
    assert all(v == ["签收", "先行联系", "办结反馈"] for v in by_ticket.values())
