"""Saving and safely loading a trained model directory.

A model directory holds `model.skops` (the Pipeline, in skops' format: loading it never runs arbitrary code, only
the object types we list below are reconstructed) and `card.json` (metadata: data hash, class counts, library
versions, metrics, the SHA-256 of `model.skops`). Loading refuses a missing, tampered or incompatible artifact with
a message that says what to do.
"""

from __future__ import annotations

import hashlib
import json
import platform
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.pipeline import Pipeline

MODEL_FILE = "model.skops"
CARD_FILE = "card.json"
FORMAT_VERSION = 1

# Types skops may rebuild besides its defaults. Anything else in a file is refused before loading.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "builtins.")
_TRUSTED_TYPES = frozenset(
    {
        "classifier.pipeline.TextNormalizer",
        "classifier.tokenizer.Tokenizer",
    }
)
# Libraries whose version must match between training and serving (major.minor), because their
# fitted objects' internals can change between minor releases.
_PINNED = ("scikit-learn", "numpy", "scipy")
_RECORDED = (*_PINNED, "skops", "rjieba", "opencc", "chinesecalendar")


class ModelError(RuntimeError):
    """The model artifact is missing, tampered with or incompatible with this installation."""


@dataclass(frozen=True)
class LoadedModel:
    pipeline: Pipeline
    card: dict[str, Any]
    path: Path

    @property
    def version(self) -> str:
        return str(self.card["model_version"])

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.card["classes"]]


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _RECORDED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _drop_stop_words(pipeline: Pipeline) -> None:
    """TfidfVectorizer keeps every pruned term in `stop_words_` only for introspection; it is most of the file."""
    features = pipeline.named_steps.get("features")
    for _, vectorizer in getattr(features, "transformer_list", []):
        if hasattr(vectorizer, "stop_words_"):
            del vectorizer.stop_words_


def save_model(pipeline: Pipeline, card: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Write model.skops and card.json; returns the completed card."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _drop_stop_words(pipeline)
    model_path = out_dir / MODEL_FILE
    tmp = model_path.with_suffix(".tmp")
    sio.dump(pipeline, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    tmp.replace(model_path)
    digest = sha256_file(model_path)
    full = {
        "format_version": FORMAT_VERSION,
        **card,
        "classes": [str(c) for c in pipeline.classes_],
        "libraries": library_versions(),
        "model_sha256": digest,
        "model_version": f"{card.get('name', out_dir.name)}-{digest[:12]}",
    }
    (out_dir / CARD_FILE).write_text(json.dumps(full, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return full


def _read_card(model_dir: Path) -> dict[str, Any]:
    card_path = model_dir / CARD_FILE
    if not (model_dir / MODEL_FILE).is_file() or not card_path.is_file():
        raise ModelError(
            f"模型目录 {model_dir} 缺少 {MODEL_FILE} 或 {CARD_FILE}；"
            "请用 `hotline train` 训练，或设置 HOTLINE_MODEL 指向 models/street"
        )
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"模型说明 {card_path} 不是有效的 JSON: {exc}") from exc
    if not isinstance(card, dict) or card.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"模型 {model_dir} 的格式版本不受支持（需要 {FORMAT_VERSION}）；请重新训练")
    return card


def _check_compatible(card: dict[str, Any], model_dir: Path) -> None:
    trained = card.get("libraries", {})
    here = library_versions()
    for name in _PINNED:
        want, have = str(trained.get(name, "?")), here[name]
        if want.split(".")[:2] != have.split(".")[:2]:
            raise ModelError(
                f"模型 {model_dir} 由 {name} {want} 训练，当前安装的是 {have}，不兼容；"
                f"请安装 {name}=={want} 或重新训练模型"
            )


def _check_types(model_path: Path) -> list[str]:
    untrusted = sio.get_untrusted_types(file=model_path)
    refused = [t for t in untrusted if t not in _TRUSTED_TYPES and not t.startswith(_TRUSTED_PREFIXES)]
    if refused:
        raise ModelError(f"模型文件 {model_path} 含有不受信任的对象类型，拒绝加载: {', '.join(refused)}")
    return list(untrusted)


def load_model(model_dir: str | Path) -> LoadedModel:
    """Load a model directory, refusing tampered, foreign or incompatible artifacts."""
    path = Path(model_dir)
    card = _read_card(path)
    model_path = path / MODEL_FILE
    if sha256_file(model_path) != card.get("model_sha256"):
        raise ModelError(f"模型文件 {model_path} 的校验和与 {CARD_FILE} 不符（文件被改动或损坏），拒绝加载")
    _check_compatible(card, path)
    trusted = _check_types(model_path)
    try:
        pipeline = sio.load(model_path, trusted=trusted)
    except Exception as exc:  # skops raises many types for corrupt files; all mean the same to the operator
        raise ModelError(f"模型文件 {model_path} 无法加载: {exc}") from exc
    if not isinstance(pipeline, Pipeline):
        raise ModelError(f"模型文件 {model_path} 不是 scikit-learn Pipeline")
    if [str(c) for c in pipeline.classes_] != card.get("classes"):
        raise ModelError(f"模型 {path} 的类别与 {CARD_FILE} 不符")
    return LoadedModel(pipeline=pipeline, card=card, path=path)
