"""Hot switch: every API process follows the active model within a few seconds, without a restart.

A daemon thread reads the active version (one indexed single-row query) every few seconds. When it differs from the
served one, the thread loads the new model itself — off the request path — and swaps it in with one assignment:
a request or an intake batch uses whichever classifier it picked up, so each ticket is classified wholly by the old
or wholly by the new model. A version that fails to load here (a directory missing on this host, say) is logged and
retried later; the process keeps serving the model it has.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

from classifier.artifact import ModelError
from service.errors import DomainError
from service.learning.registry import ModelStore, active_version, loadable
from service.state import AppState

log = logging.getLogger(__name__)
# a version that failed to load is tried again after this long, not on every check
RETRY_FAILED_SECONDS = 300.0


class ModelSwitch:
    def __init__(self, state: AppState, store: ModelStore, interval: float) -> None:
        self.state = state
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: dict[str, float] = {}

    def check(self) -> bool:
        """Switch to the active version if it is not the one served; True when a switch happened."""
        wanted = active_version(self.state.engine)
        if wanted is None or wanted == self.state.classifier.version:
            return False
        failed_at = self._failed.get(wanted)
        if failed_at is not None and time.monotonic() - failed_at < RETRY_FAILED_SECONDS:
            return False
        try:
            classifier = loadable(self.store.dir_of(wanted), self.state.rules, wanted)
        except (DomainError, ModelError) as exc:
            self._failed[wanted] = time.monotonic()
            log.error("model_switch_failed", extra={"version": wanted, "error": str(exc)})
            return False
        previous = self.state.classifier.version
        self.state.set_classifier(classifier)
        # the new model is long-lived like the first: keep the collector from walking it (see app.lifespan)
        gc.freeze()
        log.info("model_switched", extra={"from": previous, "to": wanted})
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # database briefly unreachable, say: the next check tries again
                log.exception("model_check_failed")

    def start(self) -> None:
        try:
            self.check()  # serve the active model from the first request
        except Exception:
            log.exception("model_check_failed")
        self._thread = threading.Thread(target=self._run, name="model-switch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
