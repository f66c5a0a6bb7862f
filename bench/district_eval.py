"""The district profile's combined two-level decision on the hand-labelled test split (bureau labels).

    .venv/bin/python bench/district_eval.py [--model models/district] [--rules examples/district-rules.yaml]

Prints first-level accuracy, bureau (office) accuracy on all and on clearly labelled messages, the share of
messages dispatched without review, and the precision of those; with --curve, precision and coverage by threshold.
The test split is never read by training or calibration (models/district/CARD.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from classifier.config import load_rules
from classifier.twolevel import load_classifier

ROOT = Path(__file__).resolve().parents[1]


def evaluate(model: Path, rules_path: Path, labels: Path) -> dict[str, Any]:
    rules = load_rules(rules_path)
    classifier = load_classifier(model, rules)
    rows = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    test = [r for r in rows if r["split"] == "test"]
    texts = [f"{r['title']}\x1e{r['content']}" if r["title"] else r["content"] for r in test]
    decisions = classifier.decide_batch(texts)
    by_name = {c.name: code for code, c in rules.categories.items()}
    right = [d.office == r["bureau"] for d, r in zip(decisions, test, strict=True)]
    lenient = [d.office in (r["bureau"], r.get("alt_bureau")) for d, r in zip(decisions, test, strict=True)]
    level1 = [
        (d.levels[0]["category"] if d.levels else d.category) == by_name.get(r["label"], r["label"])
        for d, r in zip(decisions, test, strict=True)
    ]
    clear = [i for i, r in enumerate(test) if r.get("clarity") == "clear"]
    auto = [i for i, d in enumerate(decisions) if not d.needs_review]
    curve = []
    for step in range(50, 100, 5):
        threshold = step / 100
        chosen = [i for i, d in enumerate(decisions) if d.auto_eligible and d.office_confidence >= threshold]
        curve.append(
            {
                "threshold": threshold,
                "coverage": round(len(chosen) / len(test), 4),
                "precision": round(sum(right[i] for i in chosen) / len(chosen), 4) if chosen else None,
            }
        )
    return {
        "n": len(test),
        "model_version": classifier.version,
        "level1_accuracy": round(sum(level1) / len(test), 4),
        "bureau_accuracy": round(sum(right) / len(test), 4),
        "bureau_accuracy_clear": round(sum(right[i] for i in clear) / len(clear), 4) if clear else None,
        "n_clear": len(clear),
        "bureau_accuracy_with_alt": round(sum(lenient) / len(test), 4),
        "auto_dispatched": len(auto),
        "auto_coverage": round(len(auto) / len(test), 4),
        "auto_precision": round(sum(right[i] for i in auto) / len(auto), 4) if auto else None,
        "threshold": (classifier.auto_dispatch or {}).get("threshold"),
        "curve": curve,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "district")
    parser.add_argument("--rules", type=Path, default=ROOT / "examples" / "district-rules.yaml")
    parser.add_argument("--labels", type=Path, default=ROOT / "models" / "district" / "level1_labels.jsonl")
    parser.add_argument("--curve", action="store_true")
    args = parser.parse_args()
    result = evaluate(args.model, args.rules, args.labels)
    if not args.curve:
        result.pop("curve")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
