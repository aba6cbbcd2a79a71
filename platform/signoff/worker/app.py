"""One Celery app per Flask app, its schedule, and enqueueing after commit."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from flask import Flask, current_app, has_app_context

from signoff.worker import pending, tasks
from signoff.workflow.actions import after_commit_listeners

log = logging.getLogger(__name__)

EXTENSION = "signoff_celery"


def broker_url(app: Flask) -> str | None:
    url = app.config.get("SIGNOFF_BROKER_URL") or app.config.get("SIGNOFF_REDIS_URL")
    return str(url) if url else None


def beat_schedule(app: Flask) -> dict[str, dict[str, Any]]:
    cfg = app.config
    return {
        "outbox-sweep": {
            "task": "signoff.sweep_outbox",
            "schedule": timedelta(seconds=int(cfg.get("SIGNOFF_OUTBOX_SWEEP_SECONDS", 15))),
        },
        "sla-sweep": {
            "task": "signoff.sla_sweep",
            "schedule": timedelta(seconds=int(cfg.get("SIGNOFF_SLA_SWEEP_SECONDS", 60))),
        },
        "audit-checkpoints": {"task": "signoff.audit_checkpoints", "schedule": timedelta(hours=1)},
        "cleanup": {"task": "signoff.cleanup", "schedule": timedelta(hours=6)},
        "heartbeat": {"task": "signoff.heartbeat", "schedule": timedelta(seconds=10)},
        "digests": {"task": "signoff.digests", "schedule": timedelta(hours=1)},
    }


def make_celery(app: Flask) -> Celery:
    """The Celery app of ``app``: broker from config, tasks run in ``app``'s context."""

    class AppTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=AppTask, set_as_current=False)
    queue = str(app.config.get("SIGNOFF_WORKER_QUEUE") or "signoff")
    celery.conf.update(
        broker_url=broker_url(app),
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=queue,
        # A task is acknowledged after it ran: a worker that dies mid-task leaves it
        # to another worker (handlers are idempotent: delivery keys).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_schedule=beat_schedule(app),
        # The scheduler writes its own heartbeat (``signoff beat-ping``).
        beat_scheduler="signoff.worker.beat:HeartbeatScheduler",
        broker_connection_retry_on_startup=True,
        # Publishing from a web request never waits for a dead broker: the outbox
        # sweep delivers what could not be enqueued.
        broker_connection_timeout=1,
        broker_transport_options={
            "socket_connect_timeout": 1,
            "socket_timeout": 2,
            "max_retries": 0,
            "visibility_timeout": 3600,
        },
        broker_pool_limit=4,
        task_publish_retry=False,
    )
    tasks.register(celery)
    app.extensions[EXTENSION] = celery
    return celery


def celery_for(app: Flask) -> Celery | None:
    found: Celery | None = app.extensions.get(EXTENSION)
    return found


def enqueue(app: Flask, name: str, *args: Any) -> bool:
    """Publish one task; ``False`` (logged) when the broker is unreachable."""
    celery = celery_for(app)
    if celery is None or not celery.conf.broker_url:
        return False
    started = time.monotonic()
    try:
        celery.send_task(name, args=list(args), retry=False)
    except Exception as exc:  # the sweep will deliver it; the action is committed
        log.warning(
            "could not enqueue %s (%s: %s) after %.1f s; the outbox sweep will deliver it",
            name,
            type(exc).__name__,
            exc,
            time.monotonic() - started,
        )
        return False
    return True


def enqueue_delivery(tenant_id: uuid.UUID, request_id: uuid.UUID, kinds: list[str]) -> None:
    """After-commit listener of every action: deliver what it wrote to the outbox.

    Deliveries are coalesced per tenant: while a delivery task of the tenant waits in the
    queue (a short-lived Redis key says so), another action adds nothing; the task
    clears the key when it starts, then delivers everything due in the tenant, so a row
    committed before it starts is its, and one committed after enqueues a new task.
    Without Redis every action enqueues (and the sweep covers a lost enqueue).
    """
    if not has_app_context():
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not pending.claim(app.config, tenant_id):
        return
    if not enqueue(app, "signoff.deliver", str(tenant_id), ""):
        pending.release(app.config, str(tenant_id))


def install_enqueue() -> None:
    if enqueue_delivery not in after_commit_listeners:
        after_commit_listeners.append(enqueue_delivery)
