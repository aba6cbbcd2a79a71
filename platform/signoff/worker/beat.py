"""The beat's own heartbeat: the scheduler writes a Redis key as it ticks, so a liveness
probe (``signoff beat-ping``) can tell a live beat from a hung or dead one without
depending on a worker (the worker's heartbeat in :mod:`signoff.worker.health` needs
both)."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import redis
from celery.beat import PersistentScheduler

from signoff.worker.health import BEAT_STALE_SECONDS, beat_key, pooled_client

log = logging.getLogger(__name__)

#: The beat writes its key at most this often.
BEAT_WRITE_SECONDS = 10.0


class HeartbeatScheduler(PersistentScheduler):
    """Celery's persistent scheduler, writing ``signoff:beat:heartbeat:<queue>`` as it
    ticks (at least every 10 s: the worker heartbeat is scheduled that often)."""

    _last_write = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval: float = super().tick(*args, **kwargs)
        now = time.monotonic()
        if now - self._last_write >= BEAT_WRITE_SECONDS:
            self._last_write = now
            self.write_heartbeat()
        return min(interval, BEAT_WRITE_SECONDS)

    def write_heartbeat(self) -> None:
        config = {
            "SIGNOFF_BROKER_URL": self.app.conf.broker_url,
            "SIGNOFF_WORKER_QUEUE": self.app.conf.task_default_queue,
        }
        client = pooled_client(config)
        if client is None:
            return
        # A beat that cannot reach Redis keeps scheduling (publishing will fail and be
        # logged); its probe fails, since the key ages.
        with contextlib.suppress(redis.RedisError):
            client.set(beat_key(config), str(time.time()), ex=BEAT_STALE_SECONDS)
