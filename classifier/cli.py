"""Console commands of the classifier: train, evaluate, classify (registered on the `hotline` app)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from classifier.artifact import ModelError
from classifier.config import Rules, RulesError, load_rules
from classifier.data import REAL_SPLITS, DataError, Dataset, load_dataset, load_real, load_unlabelled
from classifier.decision import Classifier, Decision
from classifier.evaluate import cross_validate, evaluate_model
from classifier.pipeline import PipelineParams
from classifier.train import map_labels, pipeline_factory, train_model
from classifier.twolevel import load_classifier

RulesOpt = Annotated[Path, typer.Option("--rules", envvar="HOTLINE_RULES", help="规则文件 rules.yaml")]
ModelOpt = Annotated[Path, typer.Option("--model", envvar="HOTLINE_MODEL", help="模型目录")]
TextCols = Annotated[list[str], typer.Option("--text-col", help="文本列（可多次给出，按顺序拼接；第一列可作标题）")]
RealOpt = Annotated[
    Path | None,
    typer.Option(
        "--real", help="真实标注文件（JSONL，含 title/content/label/split），如 models/street/real_labels.jsonl"
    ),
]
UnlabelledOpt = Annotated[
    list[Path] | None,
    typer.Option("--unlabelled", help="无标签数据文件（可多次给出，列同 --text-col），用于词表、IDF 与 LSA"),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"错误: {message}", err=True)
    return typer.Exit(code=2)


def _rules(path: Path) -> Rules:
    try:
        return load_rules(path)
    except RulesError as exc:
        raise _fail(str(exc)) from exc


def _classifier(model: Path, rules: Path) -> Classifier:
    try:
        return load_classifier(model, _rules(rules))
    except ModelError as exc:
        raise _fail(str(exc)) from exc


def train(
    out: Annotated[Path, typer.Option("--out", help="输出模型目录，如 models/street")],
    data: Annotated[
        Path | None, typer.Option("--data", help="训练数据 CSV / XLSX / JSONL（有 --real 时可省略）")
    ] = None,
    text_col: Annotated[list[str] | None, typer.Option("--text-col", help="文本列（可多次给出）")] = None,
    label_col: Annotated[str | None, typer.Option("--label-col", help="标签列（分类代码或分类名称）")] = None,
    rules: RulesOpt = Path("rules.yaml"),
    folds: Annotated[int, typer.Option("--cv", help="交叉验证折数")] = 5,
    params: Annotated[str | None, typer.Option("--params", help="超参数 JSON，如 '{\"c\": 0.5}'")] = None,
    unlabelled: UnlabelledOpt = None,
    real: RealOpt = None,
    real_weight: Annotated[float, typer.Option("--real-weight", help="真实数据 train 部分的样本权重")] = 1.0,
) -> None:
    """Train a model from labelled data and save it with its card.

    With --real: the file's train split is added to the training data, its calib split sets the auto-dispatch
    threshold (rules: classifier.auto_dispatch_precision / _confidence), its test split is never read."""
    loaded_rules = _rules(rules)
    if data is None and real is None:
        raise _fail("请给出 --data FILE（及 --text-col、--label-col）或 --real FILE")
    if data is not None and (not text_col or not label_col):
        raise _fail("--data 需要 --text-col 和 --label-col")
    try:
        if data is not None:
            dataset = load_dataset(data, text_cols=text_col or [], label_col=label_col)
        else:
            dataset = Dataset(texts=[], labels=[], sha256="", source="-")
        extra = load_unlabelled(unlabelled, text_cols=text_col or []) if unlabelled else None
        chosen = PipelineParams(**json.loads(params)) if params else PipelineParams()
        real_data = load_real(real) if real else None
        card = train_model(
            dataset,
            rules=loaded_rules,
            out_dir=out,
            name=out.name,
            params=chosen,
            folds=folds,
            progress=True,
            unlabelled=extra,
            real=real_data,
            real_weight=real_weight,
        )
    except (DataError, TypeError, json.JSONDecodeError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    cv = card["metrics"]["cv"]
    auto = card.get("auto_dispatch")
    typer.echo(f"模型 {card['model_version']} 已保存到 {out}")
    typer.echo(
        f"交叉验证（{folds} 折）：模型 准确率 {cv['model']['accuracy']:.4f} 宏F1 {cv['model']['macro_f1']:.4f}；"
        f"模型+规则 准确率 {cv['decision']['accuracy']:.4f} 宏F1 {cv['decision']['macro_f1']:.4f}；"
        f"仅规则 宏F1 {cv['rules_only']['macro_f1']:.4f}"
    )
    if auto:
        _print_threshold(auto)


def _print_threshold(auto: dict[str, Any]) -> None:
    g = auto.get("guarantee") or {}
    oos = auto.get("out_of_scope") or {}
    if auto.get("threshold") is None:
        typer.echo(
            f"自动派单阈值：无（校准集 {g.get('n_calib')} 条上无法证明科室准确率 ≥ {auto['precision']:.0%}），全部审核"
        )
    else:
        typer.echo(
            f"自动派单阈值：派单置信度 ≥ {auto['threshold']:.2f}；校准集 {g.get('n_calib')} 条中自动派单 "
            f"{g.get('dispatched')} 条、派错 {g.get('errors')} 条，错误率 {auto['confidence']:.0%} 上界 "
            f"{g.get('upper_error_bound', 1):.4f} → 科室准确率 ≥ {1 - g.get('upper_error_bound', 1):.4f}"
            f"（目标 {auto['precision']:.0%}）"
        )
    if oos:
        typer.echo(f"超出范围：已知词比例 < {oos.get('min_known_share')} 进入审核（α = {oos.get('alpha')}）")


def _print_report(report: dict[str, Any]) -> None:
    for part, title in (("model", "模型"), ("decision", "模型+规则（实际派单决策）"), ("rules_only", "仅关键词规则")):
        m = report[part]
        office = f"  科室准确率 {m['office_accuracy']:.4f}" if "office_accuracy" in m else ""
        typer.echo(f"\n== {title} ==  样本 {m['n']}  准确率 {m['accuracy']:.4f}  宏F1 {m['macro_f1']:.4f}{office}")
        typer.echo(f"{'类别':<22}{'精确率':>8}{'召回率':>8}{'F1':>8}{'样本':>6}")
        for label, s in m["per_class"].items():
            typer.echo(f"{label:<24}{s['precision']:>8.3f}{s['recall']:>8.3f}{s['f1']:>8.3f}{s['support']:>6}")
        labels = m["confusion"]["labels"]
        typer.echo("混淆矩阵（行=真实，列=预测）: " + " ".join(labels))
        for label, row in zip(labels, m["confusion"]["matrix"], strict=True):
            typer.echo(f"  {label:<22} " + " ".join(f"{v:>4}" for v in row))
        if "auto_dispatch" in m:
            typer.echo("自动派单曲线（阈值 → 自动派单比例 / 其中准确率）:")
            for point in m["auto_dispatch"]:
                typer.echo(f"  ≥{point['threshold']:.2f}: {point['auto_share']:.1%} / {point['accuracy']:.1%}")
    if "dispatch" in report:
        _print_dispatch(report["dispatch"])


def _print_dispatch(d: dict[str, Any]) -> None:
    typer.echo(
        f"\n== 自动派单（不经审核） ==  {d['dispatched']}/{d['n']} 条（{d['auto_share']:.1%}），"
        f"派到正确科室 {d['office_precision']:.1%}；非“其他”类工单自动派出 {d['street_auto_share']:.1%}"
        f"（共 {d['street']} 条）"
    )
    if d.get("precision") is not None:
        _print_threshold(d)
    typer.echo("覆盖率–准确率曲线（派单置信度阈值 → 自动派单比例 / 科室准确率 / 非“其他”类自动派出比例）:")
    for p in d["curve"]:
        typer.echo(
            f"  ≥{p['threshold']:.2f}: {p['auto_share']:.1%} / {p['office_precision']:.1%}"
            f" / {p['street_auto_share']:.1%}"
        )


def evaluate(
    data: Annotated[Path | None, typer.Option("--data", help="带标签的数据 CSV / XLSX / JSONL")] = None,
    text_col: Annotated[list[str] | None, typer.Option("--text-col", help="文本列（可多次给出）")] = None,
    label_col: Annotated[str | None, typer.Option("--label-col")] = None,
    real: RealOpt = None,
    rules: RulesOpt = Path("rules.yaml"),
    cv: Annotated[int | None, typer.Option("--cv", help="K 折交叉验证（与 --model 二选一）")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="评估已训练的模型目录")] = None,
    params: Annotated[str | None, typer.Option("--params", help="交叉验证时的超参数 JSON")] = None,
    unlabelled: UnlabelledOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="输出一个 JSON 对象")] = False,
    split: Annotated[str, typer.Option("--split", help="与 --real 一起：评估哪一部分（train/calib/test）")] = "test",
    clear_only: Annotated[bool, typer.Option("--clear-only", help="与 --real 一起：只评估标注清晰的工单")] = False,
) -> None:
    """Evaluate by cross-validation or a trained model: model, model+rules and rules alone.

    --data FILE with --text-col/--label-col, or --real FILE [--split test] [--clear-only] for the real labels."""
    if (cv is None) == (model is None):
        raise _fail("请给出 --cv K 或 --model DIR 之一")
    if (data is None) == (real is None):
        raise _fail("请给出 --data FILE 或 --real FILE 之一")
    if split not in REAL_SPLITS:
        raise _fail(f"--split 应为 {'/'.join(REAL_SPLITS)} 之一")
    loaded_rules = _rules(rules)
    try:
        dataset: Dataset
        if real is not None:
            dataset = load_real(real).part(split, clear_only=clear_only)
            text_col = text_col or ["title", "content"]
        else:
            assert data is not None
            if not text_col or not label_col:
                raise _fail("--data 需要 --text-col 与 --label-col")
            dataset = load_dataset(data, text_cols=text_col, label_col=label_col)
        labels = map_labels(dataset.labels, loaded_rules)
        if model is not None:
            report = evaluate_model(_classifier(model, rules), dataset.texts, labels)
        else:
            chosen = PipelineParams(**json.loads(params)) if params else PipelineParams()
            extra = load_unlabelled(unlabelled, text_cols=text_col or []).texts if unlabelled else None
            build = pipeline_factory(loaded_rules, chosen, extra)
            report = cross_validate(
                dataset.texts, labels, build=build, rules=loaded_rules, folds=cv or 5, progress=not as_json
            )
    except (DataError, ModelError, TypeError, json.JSONDecodeError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        summary = {"accuracy": report["model"]["accuracy"], "macro_f1": report["model"]["macro_f1"], **report}
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        _print_report(report)


def _decision_line(item_id: Any, decision: Decision) -> dict[str, Any]:
    return {
        "id": item_id,
        "category": decision.category,
        "office": decision.office,
        "confidence": decision.confidence,
        "needs_review": decision.needs_review,
        "alternatives": [{"category": a.category, "score": a.score} for a in decision.alternatives],
        "source": decision.source,
        "urgent": decision.urgent,
    }


def _jsonl_items(path: Path) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """(line number, id, text, error) for every non-empty line."""
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, None, f"第 {number} 行不是有效的 JSON: {exc.msg}"
                continue
            if not isinstance(obj, dict):
                yield number, None, None, f"第 {number} 行应为 JSON 对象"
                continue
            text = obj.get("text")
            if not isinstance(text, str) or not text.strip():
                yield number, obj.get("id"), None, f"第 {number} 行缺少非空字符串字段 text"
                continue
            yield number, obj.get("id", number), text, None


def classify(
    text: Annotated[str | None, typer.Argument(help="工单文本")] = None,
    jsonl: Annotated[Path | None, typer.Option("--jsonl", help='每行一个 {"id":…, "text":…} 的文件')] = None,
    rules: RulesOpt = Path("rules.yaml"),
    model: ModelOpt = Path("models/street"),
) -> None:
    """Classify one text, or every line of a JSONL file (one JSON result per line)."""
    if (text is None) == (jsonl is None):
        raise _fail("请给出文本或 --jsonl FILE 之一")
    clf = _classifier(model, rules)
    if text is not None:
        typer.echo(json.dumps(clf.decide(text).as_dict(), ensure_ascii=False, indent=2))
        return
    assert jsonl is not None
    if not jsonl.is_file():
        raise _fail(f"找不到文件 {jsonl}")
    failures = 0
    for number, item_id, item_text, error in _jsonl_items(jsonl):
        if error is not None or item_text is None:
            failures += 1
            typer.echo(f"错误: {error}", err=True)
            typer.echo(json.dumps({"id": item_id, "line": number, "error": error}, ensure_ascii=False))
            continue
        typer.echo(json.dumps(_decision_line(item_id, clf.decide(item_text)), ensure_ascii=False))
    sys.stdout.flush()
    if failures:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("classify")(classify)
