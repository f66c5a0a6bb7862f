"""The one retry schedule of callbacks and alerts: doubling, capped, jittered within the upper half."""

from __future__ import annotations

import random

from service.notify.people import ALERT_BACKOFF
from service.notify.service import DeliveryPolicy
from service.retry import Backoff


def test_delay_doubles_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    schedule = Backoff(base_seconds=30, max_seconds=600)
    for attempts, ceiling in ((1, 30), (2, 60), (3, 120), (5, 480), (6, 600), (20, 600)):
        waits = [schedule.delay(attempts, rng).total_seconds() for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert max(waits) - min(waits) > ceiling / 10  # jittered, not lockstep


def test_callbacks_and_alerts_share_it() -> None:
    policy = DeliveryPolicy(url=None, secret="x", backoff_seconds=30, backoff_max_seconds=600)
    a, b = random.Random(1), random.Random(1)
    assert policy.backoff(4, a) == Backoff(30, 600).delay(4, b)
    assert 60 <= ALERT_BACKOFF.delay(1, random.Random(3)).total_seconds() <= 120  # about 2 minutes after the first
