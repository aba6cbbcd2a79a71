"""Is the broker reachable, is a worker alive? For ``/health`` and ``/ready``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import redis


def heartbeat_key(config: Mapping[str, Any]) -> str:
    """Per queue: a worker of another installation on the same Redis is not ours."""
    return f"signoff:worker:heartbeat:{config.get('SIGNOFF_WORKER_QUEUE') or 'signoff'}"


#: A worker's beat writes the heartbeat every 10 s; older than this is "no worker".
HEARTBEAT_STALE_SECONDS = 60


def beat_key(config: Mapping[str, Any]) -> str:
    """The beat's own heartbeat (``worker/beat.py``), per queue like the worker's."""
    return f"signoff:beat:heartbeat:{config.get('SIGNOFF_WORKER_QUEUE') or 'signoff'}"


#: The beat writes its heartbeat every 10 s as it ticks; older than this is "no beat".
BEAT_STALE_SECONDS = 60


_pooled: dict[str, redis.Redis[bytes]] = {}


def pooled_client(config: Mapping[str, Any]) -> redis.Redis[bytes] | None:
    """A client of the broker's Redis, its connection pool kept for the process."""
    url = config.get("SIGNOFF_BROKER_URL") or config.get("SIGNOFF_REDIS_URL")
    if not url:
        return None
    found = _pooled.get(str(url))
    if found is None:
        found = _pooled[str(url)] = redis.Redis.from_url(
            str(url), socket_connect_timeout=0.5, socket_timeout=0.5, retry_on_timeout=False
        )
    return found


def _fresh(value: bytes | None, stale_after: float) -> bool:
    return value is not None and time.time() - float(value) < stale_after


def beat_alive(config: Mapping[str, Any]) -> bool | None:
    """Whether the beat wrote its heartbeat lately (``None``: Redis cannot say)."""
    client = pooled_client(config)
    if client is None:
        return None
    try:
        return _fresh(client.get(beat_key(config)), BEAT_STALE_SECONDS)
    except redis.RedisError:
        return None


def status(config: Mapping[str, Any]) -> dict[str, str]:
    """``{"broker": "ok" | "unreachable" | "not configured", "worker": "ok" | "no heartbeat",
    "beat": "ok" | "no heartbeat"}``. The worker's heartbeat is a task the beat
    schedules, so it needs both; ``beat`` says which of the two is missing."""
    client = pooled_client(config)
    if client is None:
        return {"broker": "not configured", "worker": "not configured", "beat": "not configured"}
    try:
        client.ping()
        worker, beat = client.mget([heartbeat_key(config), beat_key(config)])
    except redis.RedisError:
        return {"broker": "unreachable", "worker": "unknown", "beat": "unknown"}
    return {
        "broker": "ok",
        "worker": "ok" if _fresh(worker, HEARTBEAT_STALE_SECONDS) else "no heartbeat",
        "beat": "ok" if _fresh(beat, BEAT_STALE_SECONDS) else "no heartbeat",
    }
