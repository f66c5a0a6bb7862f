"""Versioned model directories and the active model's history.

Each model lives in `<models root>/<version>/` (model.skops, card.json, CARD.md) where version is the card's
model_version. The active version is the newest `model_activation` row, so every process reads the same answer;
promote pushes a version, rollback returns to the one before. A model that does not load is refused before it is
recorded, so a broken model never becomes active.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from classifier.artifact import CARD_FILE, MODEL_FILE, ModelError
from classifier.decision import Classifier
from classifier.twolevel import load_classifier
from service.errors import ConflictError, DomainError, NotFoundError
from service.learning.models import ModelActivation
from service.rules import ServiceRules

_VERSION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,119}")
_COPIED = (MODEL_FILE, CARD_FILE, "CARD.md")


class ModelRefusedError(DomainError):
    """The model cannot be loaded (missing, tampered, incompatible, foreign categories): it is not activated."""


@dataclass(frozen=True)
class StoredModel:
    version: str
    path: Path
    card: dict[str, Any]


def _read_card(path: Path) -> dict[str, Any] | None:
    try:
        card = json.loads((path / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


@dataclass(frozen=True)
class ModelStore:
    """The models root and the configured (shipped) model, the first champion."""

    root: Path
    configured: Path

    def dir_of(self, version: str) -> Path:
        if not _VERSION.fullmatch(version):
            raise NotFoundError(f"模型版本「{version}」格式无效")
        return self.root / version

    def models(self) -> list[StoredModel]:
        """Every model directory under the root (with a card), oldest training first."""
        found = []
        if self.root.is_dir():
            for path in self.root.iterdir():
                card = _read_card(path) if path.is_dir() and not path.name.startswith(".") else None
                if card is not None and card.get("model_version") == path.name:
                    found.append(StoredModel(path.name, path, card))
        return sorted(found, key=lambda m: (str(m.card.get("trained_at", "")), m.version))

    def configured_version(self) -> str:
        card = _read_card(self.configured)
        if card is None or "model_version" not in card:
            raise ModelError(f"模型目录 {self.configured} 缺少有效的 {CARD_FILE}")
        return str(card["model_version"])

    def register_configured(self) -> str:
        """Copy the configured model into the root (once), so it stays available after the shipped one changes."""
        version = self.configured_version()
        target = self.dir_of(version)
        if not (target / CARD_FILE).is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".copy-", dir=self.root))
            for name in _COPIED:
                if (self.configured / name).is_file():
                    shutil.copy2(self.configured / name, staging / name)
            try:
                staging.rename(target)
            except OSError:  # another process copied it first
                shutil.rmtree(staging, ignore_errors=True)
        return version

    def staging_dir(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".train-", dir=self.root))

    def keep(self, staging: Path, version: str) -> Path:
        """Move a freshly trained model into place under its version (the same model trained twice is kept once)."""
        target = self.dir_of(version)
        if target.exists():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.rename(target)
        return target


def loadable(path: Path, rules: ServiceRules, version: str) -> Classifier:
    """Load a model as every API process will; refuses with a clear Chinese message."""
    try:
        classifier = load_classifier(path, rules)
    except ModelError as exc:
        raise ModelRefusedError(f"模型 {version} 无法加载，未启用：{exc}") from exc
    if classifier.model.version != version:
        raise ModelRefusedError(f"模型 {version} 的说明卡记录的版本是 {classifier.model.version}，与目录名不符，未启用")
    return classifier


def active_version(engine: Engine) -> str | None:
    """The version every process should serve (None: no change was ever made, serve the configured model)."""
    statement = sa_select(ModelActivation.version).order_by(col(ModelActivation.id).desc()).limit(1)  # type: ignore[call-overload]
    with engine.connect() as conn:
        value = conn.execute(statement).scalar()
    return None if value is None else str(value)


def history(*, session: Session) -> list[ModelActivation]:
    return list(session.exec(select(ModelActivation).order_by(col(ModelActivation.id))))


def version_stack(rows: list[ModelActivation]) -> list[str]:
    """Promotions push, rollbacks pop: the top is active, the one below is where a rollback goes."""
    stack: list[str] = []
    for row in rows:
        if row.kind == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != row.version:
                stack.append(row.version)
        else:
            stack.append(row.version)
    return stack


def current_version(*, session: Session, store: ModelStore) -> str:
    rows = history(session=session)
    return rows[-1].version if rows else store.configured_version()


def _record(
    session: Session, version: str, kind: str, actor: str, now: dt.datetime, note: str | None
) -> ModelActivation:
    row = ModelActivation(version=version, at=now, kind=kind, actor=actor[:64], note=note[:500] if note else None)
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def _ensure_baseline(session: Session, store: ModelStore, now: dt.datetime) -> None:
    """Before the first change, record the configured model as where a rollback returns to."""
    if not history(session=session):
        session.add(ModelActivation(version=store.register_configured(), at=now, kind="baseline", actor="system"))
        session.flush()


def promote(
    *,
    session: Session,
    store: ModelStore,
    rules: ServiceRules,
    version: str,
    actor: str,
    now: dt.datetime,
    kind: str = "promote",
    note: str | None = None,
) -> ModelActivation:
    """Make `version` active for every process; refused (ModelRefusedError) when it does not load."""
    path = store.dir_of(version)
    if not path.is_dir():
        raise NotFoundError(f"模型 {version} 不存在（应在 {path}）；用 hotline model list 查看已有版本")
    loadable(path, rules, version)
    _ensure_baseline(session, store, now)
    if current_version(session=session, store=store) == version:
        session.rollback()
        raise ConflictError(f"模型 {version} 已是当前模型")
    return _record(session, version, kind, actor, now, note)


def rollback(
    *, session: Session, store: ModelStore, rules: ServiceRules, actor: str, now: dt.datetime
) -> ModelActivation:
    """Return to the model that was active before the current one."""
    stack = version_stack(history(session=session))
    if len(stack) < 2:
        raise ConflictError("没有可回退的上一版本")
    target = stack[-2]
    loadable(store.dir_of(target), rules, target)
    return _record(session, target, "rollback", actor, now, f"回退自 {stack[-1]}")
