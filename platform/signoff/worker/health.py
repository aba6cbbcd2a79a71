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


def status(config: Mapping[str, Any]) -> dict[str, str]:
    """``{"broker": "ok" | "unreachable" | "not configured", "worker": "ok" | "no heartbeat"}``."""
    client = pooled_client(config)
    if client is None:
        return {"broker": "not configured", "worker": "not configured"}
    try:
        client.ping()
        beat = client.get(heartbeat_key(config))
    except redis.RedisError:
        return {"broker": "unreachable", "worker": "unknown"}
    if beat is None:
        return {"broker": "ok", "worker": "no heartbeat"}
    age = time.time() - float(beat)
    return {"broker": "ok", "worker": "ok" if age < HEARTBEAT_STALE_SECONDS else "no heartbeat"}
