"""Everything the app loads once at start-up and shares between requests."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from classifier.decision import Classifier
from service.clock import utcnow
from service.deadlines.service import DeadlinePolicy
from service.evidence.storage import LocalStore, PhotoStore
from service.intake.batcher import IntakeBatcher
from service.ops.metrics import Metrics
from service.rules import ServiceRules
from service.settings import Settings


@dataclass
class Throttle:
    """Failed-token attempts per client address: too many within the window → 429 for the rest of it."""

    limit: int = 20
    window_seconds: int = 60
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, client: str, now: float) -> deque[float]:
        q = self._failures.setdefault(client, deque())
        while q and q[0] < now - self.window_seconds:
            q.popleft()
        return q

    def blocked(self, client: str) -> bool:
        with self._lock:
            return len(self._recent(client, time.monotonic())) >= self.limit

    def fail(self, client: str) -> None:
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    rules: ServiceRules
    classifier: Classifier
    policy: DeadlinePolicy
    metrics: Metrics
    throttle: Throttle = field(default_factory=Throttle)
    # photo evidence (HOTLINE_PHOTO_STORE): a local directory or an S3-compatible store
    photos: PhotoStore = field(default_factory=lambda: LocalStore(Path("var/photos")))
    # "now" for intake and actions: the wall clock, or a simulated one (replays, drills)
    clock: Callable[[], dt.datetime] = field(default=utcnow)
    # where reports and exports read (HOTLINE_REPORT_DATABASE_URL), when not the primary
    report_engine: Engine | None = None
    _batcher: IntakeBatcher | None = None
    _classifier_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def reads(self) -> Engine:
        """The engine for reports and exports: the read replica when one is set, else the primary."""
        return self.report_engine or self.engine

    def set_classifier(self, classifier: Classifier) -> None:
        """Serve another model from now on: requests and the intake batcher pick it up at their next use."""
        with self._classifier_lock:
            self.classifier = classifier
            if self._batcher is not None:
                self._batcher.classifier = classifier

    @property
    def batcher(self) -> IntakeBatcher:
        """The webhook's group-commit writer, made on first use (after tests have swapped the clock or model)."""
        with self._classifier_lock:
            return self._make_batcher()

    def _make_batcher(self) -> IntakeBatcher:
        if self._batcher is None:
            self._batcher = IntakeBatcher(
                engine=self.engine,
                classifier=self.classifier,
                policy=self.policy,
                rules=self.rules,
                clock=lambda: self.clock(),
                max_batch=self.settings.intake_batch_max,
                writers=1 if self.engine.dialect.name == "sqlite" else self.settings.intake_writers,
            )
        return self._batcher
