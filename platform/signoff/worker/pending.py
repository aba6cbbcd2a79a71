"""Delivery tasks coalesced per tenant: a short-lived Redis key says that a delivery
task of the tenant waits in the queue, so further actions need not enqueue another."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from typing import Any

import redis

from signoff.worker.health import pooled_client

#: A lost task's key expires after this: the next action enqueues again.
TTL_SECONDS = 30


def key(config: Mapping[str, Any], tenant_id: uuid.UUID | str) -> str:
    queue = config.get("SIGNOFF_WORKER_QUEUE") or "signoff"
    return f"signoff:deliver-pending:{queue}:{tenant_id}"


def claim(config: Mapping[str, Any], tenant_id: uuid.UUID | str) -> bool:
    """True when the caller should enqueue (no task of the tenant is waiting, or Redis
    cannot say: then every action enqueues, and the sweep covers a lost one)."""
    client = pooled_client(config)
    if client is None:
        return True
    try:
        return bool(client.set(key(config, tenant_id), "1", nx=True, ex=TTL_SECONDS))
    except redis.RedisError:
        return True


def release(config: Mapping[str, Any], tenant_id: str) -> None:
    """A delivery task starts (or could not be enqueued): the next action enqueues."""
    client = pooled_client(config)
    if client is not None:
        with contextlib.suppress(redis.RedisError):
            client.delete(key(config, tenant_id))
