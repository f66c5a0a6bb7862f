"""One retry schedule for everything we deliver (callbacks to the hotline system, alerts to people's robots):
exponential backoff with full jitter, capped, so many failing messages do not retry in lockstep."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_seconds: float
    max_seconds: float

    def delay(self, attempts: int, rng: random.Random) -> dt.timedelta:
        """The wait after the `attempts`-th failure: base × 2^(attempts−1), capped, drawn from its upper half."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return dt.timedelta(seconds=rng.uniform(ceiling / 2, ceiling))
