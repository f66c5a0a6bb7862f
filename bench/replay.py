"""Replay real traffic: the messages of 泰迪杯 附件4 with an even 留言编号 through the signed webhook in their original
order, each resolved at its real reply time (答复时间) on a simulated clock, then the resulting report.

Odd 留言编号 are reserved for an independent evaluation of the street model, so the replay skips them before reading
their text: no reserved message passes through the service, its logs or its database.

The service runs in-process (ASGI, the same app as `hotline serve`) on a fresh SQLite file with the shipped street
model; time is compressed by moving the app's clock to each message's own timestamp.

    .venv/bin/python bench/replay.py [--limit N] [--year 2019]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import heapq
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlmodel import Session

from classifier.artifact import load_model
from classifier.decision import Classifier
from service.app import build_state, create_app
from service.auth.service import create_user
from service.db import upgrade
from service.reports.rollup import refresh, verify
from service.reports.service import daily_report
from service.rules import load_rules
from service.settings import Settings
from service.signing import sign

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "teddycup2020c" / "附件4.csv"
SH = ZoneInfo("Asia/Shanghai")


def _when(text: str) -> dt.datetime:
    text = text.strip()
    for fmt in ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=SH)
        except ValueError:
            continue
    raise ValueError(f"无法解析时间：{text!r}")


def _even(number: str) -> bool:
    number = number.strip()
    return number.isdigit() and int(number) % 2 == 0


def _messages(limit: int | None) -> list[dict[str, Any]]:
    with DATA.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if _even(r["留言编号"])]
    out = [
        {
            "id": r["留言编号"].strip(),
            "title": r["留言主题"].strip(),
            "content": r["留言详情"].strip(),
            "at": _when(r["留言时间"]),
            "reply_at": _when(r["答复时间"]),
        }
        for r in rows
    ]
    out.sort(key=lambda m: (m["at"], m["id"]))
    return out[:limit] if limit else out


def _post(client: TestClient, secret: str, message: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(
        {
            "external_id": f"TD{message['id']}",
            "received_at": message["at"].isoformat(),
            "channel": "网站",
            "title": message["title"][:200],
            "content": message["content"][:5000] or message["title"],
            "kind": "投诉",
        },
        ensure_ascii=False,
    ).encode()
    stamp = str(int(time.time()))
    headers = {
        "X-Hotline-Timestamp": stamp,
        "X-Hotline-Signature": sign(secret, stamp, body),
        "Content-Type": "application/json",
    }
    response = client.post("/api/v1/hotline/tickets", content=body, headers=headers)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{message['id']}: {response.status_code} {response.text[:200]}")
    return dict(response.json())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--year", type=int, default=2019, help="打印该年的报表（留言最多的一年）")
    args = parser.parse_args()
    if not DATA.is_file():
        sys.exit(f"数据不存在：{DATA}")
    messages = _messages(args.limit)
    secret = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'replay.db'}"
        upgrade(url)
        rules = load_rules(ROOT / "rules.yaml")
        settings = Settings(
            database_url=url,
            webhook_secret=secret,
            rules=ROOT / "rules.yaml",
            model=ROOT / "models" / "street",
            scheduler=False,
        )
        state = build_state(settings, rules=rules, classifier=Classifier(load_model(settings.model), rules))
        clock = {"now": messages[0]["at"]}
        state.clock = lambda: clock["now"].astimezone(dt.UTC)
        with Session(state.engine) as s:
            _, dispatcher = create_user(session=s, rules=rules, name="回放派单员", role="dispatcher", office=None)
            _, admin = create_user(session=s, rules=rules, name="回放承办人", role="admin", office=None)
        who = {"dispatcher": {"Authorization": f"Bearer {dispatcher}"}, "office": {"Authorization": f"Bearer {admin}"}}
        # one timeline of arrivals and replies, in time order
        timeline: list[tuple[dt.datetime, int, str, dict[str, Any]]] = []
        for i, m in enumerate(messages):
            heapq.heappush(timeline, (m["at"], i * 2, "arrive", m))
            heapq.heappush(timeline, (max(m["reply_at"], m["at"]), i * 2 + 1, "reply", m))
        ids: dict[str, int] = {}
        started = time.perf_counter()
        with TestClient(create_app(state=state)) as client:
            while timeline:
                when, _, kind, m = heapq.heappop(timeline)
                clock["now"] = when
                if kind == "arrive":
                    ids[m["id"]] = _post(client, secret, m)["id"]
                    continue
                tid = ids[m["id"]]
                current = client.get(f"/api/v1/tickets/{tid}", headers=who["dispatcher"]).json()["state"]
                steps = [("confirm", "dispatcher", {})] if current == "pending_review" else []
                steps += [("accept", "office", {}), ("resolve", "office", {"result": "解释说明", "note": "已答复"})]
                for action, role, body in steps:
                    r = client.post(f"/api/v1/tickets/{tid}/{action}", json=body, headers=who[role])
                    if r.status_code != 200:
                        raise RuntimeError(f"{m['id']} {action}: {r.status_code} {r.text[:200]}")
        took = time.perf_counter() - started
        print(
            f"回放 {len(messages)} 条留言（{messages[0]['at']:%Y-%m-%d} 至 {messages[-1]['at']:%Y-%m-%d}），"
            f"经签名推送接口接收并在真实答复时间办结，用时 {took:.0f} s（{len(messages) / took:.0f} 条/秒，含办结操作）"
        )
        year = dt.date(args.year, 1, 1), dt.date(args.year, 12, 31)
        with state.engine.connect() as conn:
            report = daily_report(conn, rules, *year).model_dump()  # nothing is rolled up yet: counted live
        # the rollup: rebuild the days the replay's writes marked, then the year again from it, and a full check
        done = refresh(state.engine, rules, now=clock["now"], backfill=0)
        first, last = messages[0]["at"].astimezone(SH).date(), clock["now"].astimezone(SH).date()
        with state.engine.connect() as conn:
            rolled = daily_report(conn, rules, *year).model_dump()
            checked = verify(conn, rules, first - dt.timedelta(days=1), last + dt.timedelta(days=90))
    same = {k: v for k, v in rolled.items() if k != "generated_at"} == {
        k: v for k, v in report.items() if k != "generated_at"
    }
    print(
        f"报表汇总：重算 {done.rebuilt} 天；hotline report verify 同样的核对 {checked.days} 天，"
        f"不一致 {len(checked.differences)} 处；{args.year} 年报表读汇总与按明细计算{'完全相同' if same else '不同'}"
    )
    t = report["totals"]
    print(
        f"\n{args.year} 年报表（全部指标见 JSON）：受理 {t['received']}，办结 {t['resolved']}，应办结 {t['due']}，"
        f"按时办结率 {t['on_time_rate']}，平均办结时长 {t['mean_hours']} 小时，中位数 {t['median_hours']} 小时"
    )
    print(f"{'承办科室':<8}{'分类':<14}{'受理':>6}{'办结':>6}{'按时办结率':>10}{'中位时长(小时)':>14}")
    for row in sorted(report["rows"], key=lambda r: -r["received"]):
        rate = "—" if row["on_time_rate"] is None else f"{row['on_time_rate']:.1%}"
        print(
            f"{row['office_name']:<8}{row['category_name']:<14}{row['received']:>6}{row['resolved']:>6}"
            f"{rate:>10}{row['median_hours'] or 0:>14.1f}"
        )
    if checked.differences or not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
