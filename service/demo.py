"""Demo data and demo helpers: a month of ticket history made by the service's own functions on a simulated clock,
and the signed demo request (`hotline send-demo-ticket` and a curl snippet) for trying the webhook by hand.

The history is never written as rows: every ticket is taken in by `intake`, every step is a `Lifecycle` action and
the deadline sweep runs as the scheduler would — each with "now" taken from a `SimulatedClock`, the same kind of
callable the app's injectable clock (`AppState.clock`) is. Deadlines therefore come from rules.yaml and the
working-day calendar, and "on time" or "late" is what the service itself decides.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import logging
import random
import shlex
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from classifier.decision import Classifier
from service.clock import utcnow
from service.deadlines.service import DeadlinePolicy
from service.errors import DomainError
from service.flows.lifecycle import Lifecycle
from service.flows.receive import intake
from service.flows.sweep import sweep
from service.reports.models import DailyReport
from service.rules import ServiceRules
from service.signing import sign
from service.tickets.models import ACTION_BODIES, STATE_LABELS, State, Ticket, TicketCreate
from service.tickets.service import Actor

log = logging.getLogger(__name__)

PREFIX = "DEMO"
DAYS = 29  # tickets are received over this many local days, today included: the reports page's default 30 days
DISPATCHER = Actor(name="demo-dispatcher", role="dispatcher")
WEBHOOK_PATH = "/api/v1/hotline/tickets"
SAMPLE_TEXT = "市民来电反映：上南二村45号302室被二房东隔成六个小间按床位出租，住了十几个人，进出杂乱，要求查处群租。"


def external_id(index: int) -> str:
    return f"{PREFIX}{index:05d}"


class SimulatedClock:
    """A settable "now" for intake, actions and the sweep (a Callable[[], datetime], as AppState.clock is)."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = start

    def __call__(self) -> dt.datetime:
        return self._now

    def set(self, moment: dt.datetime) -> None:
        if moment < self._now:
            raise ValueError("simulated time only moves forward")
        self._now = moment


# Stories -------------------------------------------------------------------------------------------------------
#
# A plan is the list of steps a ticket goes through after intake. Each step's time is computed when the previous one
# is done, from the ticket's own deadlines; a step that would fall after the real "now" does not happen, and the
# ticket stays where it is (open, perhaps overdue) — as it would have in reality.

PLANS: dict[str, tuple[str, ...]] = {
    "review": (),
    "dispatched": ("dispatch",),
    "open": ("dispatch", "accept"),
    "open_overdue": ("dispatch", "accept", "contact"),
    "cancel": ("cancel",),
    "resolved_waiting": ("dispatch", "accept", "contact", "resolve_on_time"),
    "ontime": ("dispatch", "accept", "contact", "resolve_on_time", "follow_up_good"),
    "ontime_late_contact": ("dispatch", "accept", "contact_late", "resolve_on_time", "follow_up_good"),
    "late": ("dispatch", "accept", "contact", "resolve_late", "follow_up_fair"),
    "supervised": ("dispatch", "accept", "contact", "resolve_supervised", "follow_up_fair"),
    "returned": (
        "dispatch",
        "return",
        "redispatch",
        "accept",
        "contact",
        "resolve_on_time",
        "follow_up_good",
    ),
    "reopened": (
        "dispatch",
        "accept",
        "contact",
        "resolve_on_time",
        "follow_up_bad",
        "accept",
        "contact",
        "resolve_on_time",
        "follow_up_fair",
    ),
    "reopen_closed": (
        "dispatch",
        "accept",
        "contact",
        "resolve_on_time",
        "follow_up_good",
        "reopen",
        "accept",
        "contact",
        "resolve_late",
        "follow_up_fair",
    ),
    "extended": (
        "dispatch",
        "accept",
        "contact",
        "request_extension",
        "approve_extension",
        "resolve_extended",
        "follow_up_fair",
    ),
}
# what happens to tickets of each age: cycled in order, so every kind of story occurs whatever the hour of the run
_OLD = (
    "open_overdue",
    "ontime",
    "late",
    "returned",
    "reopened",
    "ontime",
    "extended",
    "supervised",
    "ontime_late_contact",
    "late",
    "reopen_closed",
    "ontime",
    "returned",
    "cancel",
    "ontime",
    "open_overdue",
)
_MID = (
    "ontime",
    "open",
    "returned",
    "late",
    "reopened",
    "resolved_waiting",
    "extended",
    "open",
    "ontime",
    "dispatched",
)
_RECENT = ("open", "dispatched", "ontime", "returned", "resolved_waiting", "open")
_OLD_DAYS, _MID_DAYS = 9, 3

_RETURN_REASONS = ("信息不全", "属地不符", "职能不符")
_RESOLVE_NOTES = {
    "实际解决": ("已到现场核实并处置，问题已解决，已电话告知来电人", "已联合居委、物业整改到位，来电人认可"),
    "解释说明": ("已向来电人解释相关政策及后续安排，来电人表示理解", "经现场核实情况与反映不符，已电话说明"),
}
_CHANNELS = ("电话", "电话", "电话", "微信", "APP", "网站")
_KINDS = ("投诉", "投诉", "投诉", "求助", "求助", "咨询", "建议")
_CALLERS = ("王先生", "李女士", "张先生", "刘女士", "陈先生", "杨女士", "赵先生", "周女士")


@dataclass
class _Story:
    index: int
    plan: str
    payload: TicketCreate
    label: str | None
    rng: random.Random
    arrive: dt.datetime
    steps: tuple[str, ...] = ()
    position: int = 0
    ticket_id: int | None = None
    return_reason: str = ""
    due_before_extension: dt.datetime | None = None


@dataclass(order=True)
class _Due:
    at: dt.datetime
    seq: int
    kind: str = field(compare=False)  # "intake" | "step" | "sweep"
    story: _Story | None = field(compare=False, default=None)


@dataclass
class DemoResult:
    created: int = 0
    skipped: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    swept: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the simulation, without loading the model
    model_seconds: float = 0.0


def _plans(count: int) -> list[str]:
    """Each ticket's story, by how many days back it is received; the newest few wait in the review queue."""
    review = max(2, round(count * 0.06)) if count >= 6 else min(count, 1)
    result = []
    seen: Counter[str] = Counter()
    for i in range(count):
        if i >= count - review:
            result.append("review")
            continue
        age = DAYS - 1 - _day(i, count - review)
        band = _OLD if age >= _OLD_DAYS else _MID if age >= _MID_DAYS else _RECENT
        name = "old" if band is _OLD else "mid" if band is _MID else "recent"
        result.append(band[seen[name] % len(band)])
        seen[name] += 1
    return result


def _day(i: int, count: int) -> int:
    """The local day (0 = DAYS-1 days ago, DAYS-1 = today) on which the i-th of `count` tickets arrives."""
    return min(DAYS - 1, i * DAYS // max(1, count))


def _arrival(i: int, count: int, review: bool, now: dt.datetime, zone: ZoneInfo, rng: random.Random) -> dt.datetime:
    local_now = now.astimezone(zone)
    today = local_now.date()
    if review:
        # today's tickets, not yet seen by a dispatcher
        start_of_day = dt.datetime.combine(today, dt.time(), zone)
        earliest = max(start_of_day, now - dt.timedelta(hours=6))
        latest = now - dt.timedelta(minutes=2)
        if latest <= earliest:
            return now - dt.timedelta(minutes=rng.uniform(2, 60))
        return earliest + (latest - earliest) * rng.random()
    day = today - dt.timedelta(days=DAYS - 1 - _day(i, count))
    moment = dt.datetime.combine(day, dt.time(7, 30), zone) + dt.timedelta(minutes=rng.uniform(0, 14 * 60))
    if moment > now - dt.timedelta(minutes=10):
        moment = now - dt.timedelta(minutes=rng.uniform(10, 180))
    return moment.astimezone(dt.UTC)


def _daytime(moment: dt.datetime, zone: ZoneInfo, rng: random.Random) -> dt.datetime:
    """People work 08:00–21:00: a step that would fall at night happens the next morning."""
    local = moment.astimezone(zone)
    if 8 <= local.hour < 21:
        return moment
    day = local.date() if local.hour < 8 else local.date() + dt.timedelta(days=1)
    morning = dt.datetime.combine(day, dt.time(8, 0), zone) + dt.timedelta(minutes=rng.uniform(0, 90))
    return morning.astimezone(dt.UTC)


def _minutes(rng: random.Random, low: float, high: float) -> dt.timedelta:
    return dt.timedelta(minutes=rng.uniform(low, high))


class _Simulation:
    def __init__(
        self,
        *,
        engine: Engine,
        rules: ServiceRules,
        classifier: Classifier,
        policy: DeadlinePolicy,
        misroute_reasons: Sequence[str],
        clock: SimulatedClock,
        end: dt.datetime,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.classifier = classifier
        self.policy = policy
        self.misroute_reasons = tuple(misroute_reasons)
        self.clock = clock
        self.end = end
        self.zone = ZoneInfo(rules.timezone)
        self.queue: list[_Due] = []
        self.seq = 0
        self.result = DemoResult()

    def push(self, at: dt.datetime, kind: str, story: _Story | None = None) -> None:
        if at > self.end:
            return  # later than the real now: it has not happened (yet)
        self.seq += 1
        heapq.heappush(self.queue, _Due(at, self.seq, kind, story))

    def run(self) -> DemoResult:
        while self.queue:
            due = heapq.heappop(self.queue)
            self.clock.set(max(due.at, self.clock()))
            if due.kind == "sweep":
                self.result.swept.update(sweep(self.engine, self.rules, now=self.clock(), policy=self.policy))
            elif due.kind == "intake":
                assert due.story is not None
                self._intake(due.story)
            else:
                assert due.story is not None
                self._step(due.story)
        # the real now: what the scheduler's first sweep would find
        self.clock.set(max(self.end, self.clock()))
        self.result.swept.update(sweep(self.engine, self.rules, now=self.clock(), policy=self.policy))
        return self.result

    # intake and steps ------------------------------------------------------------------------------------------

    def _intake(self, story: _Story) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            ticket, created = intake(
                session=session,
                payload=story.payload,
                classifier=self.classifier,
                policy=self.policy,
                rules=self.rules,
                now=self.clock(),
            )
        story.ticket_id = ticket.id
        self.result.created += int(created)
        self.result.steps["intake"] += 1
        self._schedule(story, ticket)

    def _schedule(self, story: _Story, ticket: Ticket) -> None:
        if story.position >= len(story.steps):
            return
        step = story.steps[story.position]
        at, sweep_first = self._when(step, story, ticket)
        if sweep_first is not None:
            self.push(sweep_first, "sweep")
        self.push(max(at, self.clock() + dt.timedelta(seconds=1)), "step", story)

    def _step(self, story: _Story) -> None:
        step = story.steps[story.position]
        assert story.ticket_id is not None
        with Session(self.engine, expire_on_commit=False) as session:
            ticket = session.get(Ticket, story.ticket_id)
            assert ticket is not None
            action = self._action(step, story, ticket)
            if action is None:  # nothing to do (a model that dispatched the ticket itself)
                story.position += 1
                self._schedule(story, ticket)
                return
            name, actor, body = action
            checked = ACTION_BODIES[name].model_validate(body).model_dump()  # as the API validates a request
            lifecycle = Lifecycle(
                session=session,
                rules=self.rules,
                policy=self.policy,
                now=self.clock(),
                misroute_reasons=self.misroute_reasons,
            )
            try:
                ticket = lifecycle.perform(ticket_id=story.ticket_id, action=name, actor=actor, body=checked)
            except DomainError as exc:
                # the story ends here; the ticket keeps the state the service left it in
                self.result.refused.append(f"{story.payload.external_id} {name}: {exc.message}")
                return
        self.result.steps[name] += 1
        story.position += 1
        self._schedule(story, ticket)

    def _office(self, ticket: Ticket) -> Actor:
        return Actor(name=f"demo-{ticket.office}", role="office", office=ticket.office)

    def _action(self, step: str, story: _Story, ticket: Ticket) -> tuple[str, Actor, dict[str, Any]] | None:
        rng, office = story.rng, self._office(ticket)
        if step == "dispatch":
            if ticket.state == State.dispatched:
                return None
            if story.label and story.label in self.rules.categories and story.label != ticket.category:
                return "reroute", DISPATCHER, {"category": story.label, "note": "分类有误，改派"}
            return "confirm", DISPATCHER, {"note": "核实无误，派单"}
        if step == "redispatch":
            if story.return_reason == "职能不符":
                other = "chengyun" if ticket.office != "chengyun" else "guanli"
                target = other if other in self.rules.offices else next(iter(self.rules.offices))
                return "reroute", DISPATCHER, {"office": target, "note": "按退单理由改派"}
            return "confirm", DISPATCHER, {"note": "已补充信息后重新派单"}
        if step == "accept":
            return "accept", office, {}
        if step in ("contact", "contact_late"):
            return "contact", office, {"note": "已电话联系来电人"}
        if step.startswith("resolve"):
            results = self.rules.lifecycle.resolve_results
            result = results[0] if rng.random() < 0.75 or len(results) < 2 else results[1]
            notes = _RESOLVE_NOTES.get(result, ("已办理完毕",))
            return "resolve", office, {"result": result, "note": rng.choice(notes)}
        if step == "return":
            reasons = [r for r in _RETURN_REASONS if r in self.rules.lifecycle.return_reasons]
            story.return_reason = reasons[story.index % len(reasons)] if reasons else "其他"
            return "return", office, {"reason": story.return_reason, "note": "请核实后重新派单"}
        if step == "request_extension":
            story.due_before_extension = ticket.resolve_due
            return "request-extension", office, {"days": 5, "reason": "需协调多部门联合整治，申请延期"}
        if step == "approve_extension":
            return "approve-extension", DISPATCHER, {"note": "同意延期"}
        if step.startswith("follow_up"):
            return "follow-up", DISPATCHER, {"satisfaction": self._satisfaction(step, rng), "note": "电话回访"}
        if step == "reopen":
            return "reopen", DISPATCHER, {"note": "来电人再次反映问题反弹，重办"}
        if step == "cancel":
            return "cancel", DISPATCHER, {"note": "来电人撤回诉求"}
        raise ValueError(f"unknown demo step {step}")

    def _satisfaction(self, step: str, rng: random.Random) -> str:
        levels = list(self.rules.lifecycle.satisfaction)
        bad = [lv for lv in levels if lv in self.rules.lifecycle.reopen_on]
        good = [lv for lv in levels if lv not in bad]
        if step == "follow_up_bad" and bad:
            return bad[0]
        if step == "follow_up_good":
            return rng.choice(good[:2] or levels)
        return rng.choice(good[1:] or good or levels)

    def _when(self, step: str, story: _Story, ticket: Ticket) -> tuple[dt.datetime, dt.datetime | None]:
        """When the step happens, and a sweep that must run before it (the escalation a 督办 story needs)."""
        now, rng, zone = self.clock(), story.rng, self.zone
        resolve_due = ticket.resolve_due or now + dt.timedelta(days=5)
        if step in ("dispatch", "redispatch", "cancel", "approve_extension"):
            return _daytime(now + _minutes(rng, 10, 150), zone, rng), None
        if step == "accept":
            return _daytime(now + _minutes(rng, 15, 180), zone, rng), None
        if step == "contact":
            due = ticket.first_contact_due or now + dt.timedelta(hours=4)
            room = max(dt.timedelta(minutes=20), (due - now) * 0.7)
            return now + min(_minutes(rng, 30, 240), room), None
        if step == "contact_late":
            return max(now, ticket.first_contact_due or now) + _minutes(rng, 60, 360), None
        if step == "resolve_on_time":
            if resolve_due <= now:
                return now + _minutes(rng, 30, 120), None
            at = now + (resolve_due - now) * rng.uniform(0.3, 0.85)
            later = _daytime(at, zone, rng)
            return (later if later < resolve_due else at), None
        if step == "resolve_late":
            return max(now + _minutes(rng, 30, 60), resolve_due + _minutes(rng, 120, 960)), None
        if step == "resolve_supervised":
            threshold = self.policy.add(resolve_due, self.rules.deadlines.escalate_after).due
            sweep_at = max(now, threshold) + _minutes(rng, 1, 30)
            return sweep_at + _minutes(rng, 120, 1200), sweep_at
        if step == "resolve_extended":
            before = story.due_before_extension or now
            span = max(dt.timedelta(hours=1), resolve_due - before)
            return max(now + _minutes(rng, 30, 60), before + span * rng.uniform(0.2, 0.7)), None
        if step == "return":
            start = ticket.dispatched_at or now
            window = self.policy.return_window_end(start) - now
            return now + max(dt.timedelta(minutes=30), window * rng.uniform(0.1, 0.5)), None
        if step == "request_extension":
            room = max(dt.timedelta(hours=1), resolve_due - now)
            return now + room * rng.uniform(0.2, 0.5), None
        if step.startswith("follow_up"):
            return _daytime(now + _minutes(rng, 180, 1680), zone, rng), None
        if step == "reopen":
            return _daytime(now + _minutes(rng, 24 * 60, 4 * 24 * 60), zone, rng), None
        raise ValueError(f"unknown demo step {step}")


def generate(
    *,
    engine: Engine,
    rules: ServiceRules,
    classifier: Classifier | Callable[[], Classifier],
    policy: DeadlinePolicy,
    texts: Sequence[dict[str, Any]],
    count: int,
    now: dt.datetime | None = None,
    misroute_reasons: Sequence[str] = ("职能不符",),
    seed: int = 0,
) -> DemoResult:
    """About a month of demo history ending at `now`; tickets that already exist (by external id) are skipped.

    `texts` are corpus rows ({"text", "label"}); the i-th demo ticket uses texts[i]. The same seed gives the same
    stories, texts and offsets (relative to `now`). `classifier` may be a function that loads one: it is called only
    when there is a ticket to create."""
    started = time.perf_counter()
    end = now or utcnow()
    zone = ZoneInfo(rules.timezone)
    count = min(count, len(texts))
    plans = _plans(count)
    review = plans.count("review")
    with Session(engine) as session:
        ids = [external_id(i) for i in range(count)]
        existing = set(session.exec(select(Ticket.external_id).where(col(Ticket.external_id).in_(ids))))
    stories = []
    for i in range(count):
        rng = random.Random(f"{seed}:{i}")
        arrive = _arrival(i, count - review, plans[i] == "review", end, zone, rng)
        received = arrive - _minutes(rng, 1, 8)
        payload = TicketCreate(
            external_id=external_id(i),
            received_at=received,
            channel=rng.choice(_CHANNELS),
            title="",
            content=texts[i]["text"],
            address="",
            caller_name=rng.choice(_CALLERS),
            caller_phone=f"1380000{i:04d}",
            kind=rng.choice(_KINDS),
        )
        label = texts[i].get("label")
        stories.append(_Story(i, plans[i], payload, label, rng, arrive, PLANS[plans[i]]))
    new = [s for s in stories if s.payload.external_id not in existing]
    if not new:
        return DemoResult(skipped=count, seconds=time.perf_counter() - started)
    loading = time.perf_counter()
    if not isinstance(classifier, Classifier):
        classifier = classifier()
    loaded = time.perf_counter() - loading
    first = min(s.arrive for s in new)
    clock = SimulatedClock(first - dt.timedelta(seconds=1))
    sim = _Simulation(
        engine=engine,
        rules=rules,
        classifier=classifier,
        policy=policy,
        misroute_reasons=misroute_reasons,
        clock=clock,
        end=end,
    )
    sim.result.skipped = count - len(new)
    for story in new:
        sim.push(story.arrive, "intake", story)
    # the scheduler's sweep once a day (in service it runs every minute: later only means a later alert), plus the
    # sweeps a 督办 story needs and a last one at the real now
    day = first.astimezone(zone).date()
    while day <= end.astimezone(zone).date():
        at = dt.datetime.combine(day, dt.time(9), zone).astimezone(dt.UTC)
        if at >= first:
            sim.push(at, "sweep")
        day += dt.timedelta(days=1)
    result = sim.run()
    result.model_seconds = loaded
    result.seconds = time.perf_counter() - started - loaded
    return result


def demo_counts(engine: Engine) -> dict[str, int]:
    """Demo history tickets (DEMO00000…, not the DEMO-SEND / DEMO-CURL ones sent by hand) per state."""
    ours = col(Ticket.external_id).like(f"{PREFIX}%") & col(Ticket.external_id).not_like(f"{PREFIX}-%")
    with Session(engine) as session:
        rows = session.exec(select(Ticket.state, func.count()).where(ours).group_by(Ticket.state)).all()
    return {str(state): int(n) for state, n in rows}


def state_text(counts: dict[str, int]) -> str:
    order = [str(s) for s in State]
    parts = [
        f"{STATE_LABELS.get(State(s), s)} {counts[s]}"
        for s in sorted(counts, key=lambda s: order.index(s) if s in order else 99)
    ]
    return "，".join(parts) or "无"


def month_report(engine: Engine, rules: ServiceRules, now: dt.datetime | None = None) -> DailyReport:
    """The report of the last 30 local days (the reports page's default period), computed now."""
    from service.reports.service import daily_report

    today = (now or utcnow()).astimezone(ZoneInfo(rules.timezone)).date()
    with engine.connect() as conn:
        return daily_report(conn, rules, today - dt.timedelta(days=29), today)


def report_text(report: DailyReport) -> str:
    t = report.totals

    def rate(value: float | None) -> str:
        return "—" if value is None else f"{value:.1%}"

    return (
        f"{report.period.start} 至 {report.period.end}：受理量 {t.received}，办结量 {t.resolved}，"
        f"按时办结率 {rate(t.on_time_rate)}，超期未办结 {t.overdue_open}，退单 {t.returned}，"
        f"重办 {t.reopened}，先行联系率 {rate(t.contact_rate)}，市民满意率 {rate(t.satisfaction_rate)}"
    )


# The signed demo request -----------------------------------------------------------------------------------------


def demo_body(text: str = SAMPLE_TEXT, *, now: dt.datetime | None = None, suffix: str = "") -> dict[str, Any]:
    """A webhook body (TicketCreate) with a fresh external id."""
    moment = now or utcnow()
    local = moment.astimezone(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0)
    return {
        "external_id": f"DEMO-SEND-{moment:%Y%m%d%H%M%S}{suffix or f'-{random.randrange(16**6):06x}'}",
        "received_at": local.isoformat(),
        "channel": "电话",
        "title": "",
        "content": text,
        "address": "",
        "caller_name": "演示来电人",
        "caller_phone": "13800001234",
        "kind": "投诉",
    }


def signed_request(secret: str, body: dict[str, Any], timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers exactly as the webhook verifies them: HMAC-SHA256 over "<timestamp>.<body>"."""
    raw = json.dumps(body, ensure_ascii=False).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return raw, {
        "Content-Type": "application/json",
        "X-Hotline-Timestamp": ts,
        "X-Hotline-Signature": sign(secret, ts, raw),
    }


def curl_snippet(url: str, secret: str | None, text: str = SAMPLE_TEXT) -> str:
    """A shell snippet that signs and sends a demo ticket: the timestamp and signature are computed when it runs
    (date + openssl), so it stays valid however long after start-up it is pasted. With secret None it reads
    $HOTLINE_WEBHOOK_SECRET instead of printing one."""
    key = shlex.quote(secret) if secret is not None else '"${HOTLINE_WEBHOOK_SECRET:?请先设置 HOTLINE_WEBHOOK_SECRET}"'
    content = json.dumps(text, ensure_ascii=False).replace("'", "'\\''")  # inside a single-quoted shell word
    body = (
        '{"external_id":"DEMO-CURL-\'"$ts"\'","received_at":"\'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"\'",'
        f'"channel":"电话","content":{content},"kind":"投诉"}}'
    )
    target = shlex.quote(url.rstrip("/") + WEBHOOK_PATH)
    return "\n".join(
        [
            "ts=$(date +%s)",
            f"body='{body}'",
            f"sig=$(printf '%s.%s' \"$ts\" \"$body\" | openssl dgst -sha256 -hmac {key} | awk '{{print $NF}}')",
            f"curl -sS -X POST {target} -H 'Content-Type: application/json' \\",
            '  -H "X-Hotline-Timestamp: $ts" -H "X-Hotline-Signature: sha256=$sig" --data-binary "$body"; echo',
        ]
    )


def send(url: str, secret: str, text: str = SAMPLE_TEXT, *, timeout: float = 30.0) -> tuple[int, Any]:
    """POST a freshly signed demo ticket; (status code, parsed JSON or text)."""
    import httpx

    raw, headers = signed_request(secret, demo_body(text))
    response = httpx.post(url.rstrip("/") + WEBHOOK_PATH, content=raw, headers=headers, timeout=timeout)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def describe_response(status: int, data: Any, rules: ServiceRules | None) -> str:
    """The webhook's answer in Chinese, one or two lines."""
    if status in (200, 201) and isinstance(data, dict):
        zone = ZoneInfo(rules.timezone) if rules else dt.UTC
        head = "已创建工单" if status == 201 else "重复推送，已有工单"
        state = data.get("state", "")
        category = data.get("category")
        office = data.get("office")
        category_name = rules.categories[category].name if rules and category in rules.categories else category
        office_name = rules.office_name(office) if rules and office in rules.offices else office
        confidence = data.get("confidence")

        def local(value: str | None) -> str:
            if not value:
                return "—"
            return dt.datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")

        state_label = STATE_LABELS.get(State(state), state) if state in set(State) else state
        return (
            f"{head} #{data.get('id')}（编号 {data.get('external_id')}）：状态 {state_label}，"
            f"分类 {category_name or '—'} → {office_name or '—'}"
            + (f"，置信度 {confidence:.2f}" if isinstance(confidence, int | float) else "")
            + f"\n先行联系时限 {local(data.get('first_contact_due'))}，办结时限 {local(data.get('resolve_due'))}"
        )
    detail = data.get("detail") if isinstance(data, dict) else data
    if isinstance(detail, list):  # validation errors: "field: message"
        detail = "；".join(
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg')}" if isinstance(e, dict) else str(e)
            for e in detail
        )
    return f"推送失败（HTTP {status}）：{detail}"


def guide(
    *,
    url: str,
    tokens_file: str,
    dispatcher_token: str | None,
    secret: str | None,
    hotline: str = ".venv/bin/hotline",
) -> str:
    """What to do next, printed at demo start-up. `secret` is only ever the well-known demo secret (or None)."""
    base = url.rstrip("/")
    lines = [
        "================ 演示模式 ================",
        f"网页登录：{base}/ui/login （粘贴令牌登录）",
        f"演示令牌：{tokens_file}（每个角色、每个科室一个；派单员为 demo-dispatcher）",
    ]
    if dispatcher_token:
        lines.append(f"派单员令牌：{dispatcher_token}")
    lines += [
        f"日报与图表：{base}/ui/reports （默认近 30 天）；接口文档：{base}/docs",
        "",
        "发送一条签名工单（模拟热线推送）：",
        f"  {hotline} send-demo-ticket --url {base} --text '小区门口有人占道摆摊卖水果，影响通行'",
        "或者在另一个终端粘贴下面的 curl（时间戳和签名在运行时由 openssl 计算"
        + ("，密钥为公开的演示密钥）：" if secret is not None else "，密钥取自环境变量 HOTLINE_WEBHOOK_SECRET）："),
        "----- 8< -----",
        curl_snippet(base, secret),
        "----- >8 -----",
        "==========================================",
    ]
    return "\n".join(lines)


def read_token(tokens_file: str | Path, name: str, valid: Callable[[str], bool]) -> str | None:
    """The token of `name` from the demo tokens file, when it still logs in (the file may belong to another DB)."""
    path = Path(tokens_file)
    if not path.is_file():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] == name and valid(parts[3]):
            return parts[3]
    return None
