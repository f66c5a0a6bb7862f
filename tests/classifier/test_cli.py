"""The classifier's console commands: classify (text and JSONL), evaluate --json, train errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from service.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
COMMON = ["--rules", str(ROOT / "rules.yaml")]


def test_classify_one_text() -> None:
    r = runner.invoke(app, ["classify", "樓道裡有人飛線給電瓶車充電", *COMMON, "--model", str(ROOT / "models/street")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["category"] == "fire_safety" and out["office"] == "chengyun"


def test_classify_jsonl_reports_bad_lines_and_continues(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"id": "a", "text": "小区里僵尸车停了半年没人管"}\n'
        "{not json\n"
        '{"id": "c"}\n'
        '{"id": "d", "text": "上南路人行道上窨井盖缺失"}\n',
        encoding="utf-8",
    )
    r = runner.invoke(app, ["classify", "--jsonl", str(src), *COMMON, "--model", str(ROOT / "models/street")])
    assert r.exit_code == 1
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [x.get("id") for x in lines] == ["a", None, "c", "d"]
    assert lines[0]["category"] == "parking" and lines[3]["category"] == "road_facility"
    assert "第 2 行" in lines[1]["error"] and "text" in lines[2]["error"]
    assert {"id", "category", "office", "confidence", "needs_review", "alternatives"} <= set(lines[0])


def test_evaluate_json_on_a_model(tmp_path: Path) -> None:
    data = tmp_path / "eval.jsonl"
    rows = [
        {"text": "楼下饭店油烟直排，熏得窗户都不敢开", "label": "nuisance"},
        {"text": "小区绿化带里的大树枝条挡住了三楼窗户", "label": "greenery"},
    ]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    r = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(data),
            "--text-col",
            "text",
            "--label-col",
            "label",
            *COMMON,
            "--model",
            str(ROOT / "models/street"),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["accuracy"] == 1.0 and report["macro_f1"] == 1.0
    assert "rules_only" in report and "auto_dispatch" in report["decision"]


def test_train_reports_missing_column(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("内容,类别\n群租,group_renting\n", encoding="utf-8")
    r = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--text-col",
            "text",
            "--label-col",
            "类别",
            "--out",
            str(tmp_path / "m"),
            *COMMON,
        ],
    )
    assert r.exit_code == 2
    assert "缺少列" in r.output and not (tmp_path / "m").exists()


def test_evaluate_needs_exactly_one_mode(tmp_path: Path) -> None:
    r = runner.invoke(app, ["evaluate", "--data", "x.csv", "--text-col", "t", "--label-col", "l", *COMMON])
    assert r.exit_code == 2 and "--cv" in r.output
