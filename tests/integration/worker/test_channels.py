"""Slack and webhooks through the real worker: an approval-needed Slack message with
buttons reaches a fake Slack Web API on 127.0.0.1 (``SIGNOFF_SLACK_API_URL``); a
webhook receiver that fails once gets the retry the beat's outbox sweep makes, signed
the same way under the same ``webhook-id``, and the delivery ends ``sent``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import app_config
from tests.fixtures.tenants import fresh_client
from tests.integration.api.conftest import Api
from tests.integration.notifications.conftest import Receiver
from tests.integration.notifications.slack_helpers import (
    FakeSlack,
    buttons,
    connect,
    expense_tenant,
    link,
    new_secret,
)
from tests.integration.worker.conftest import Mailbox, Worker, start_worker
from tests.integration.worker.helpers import rows

SWEEP_SECONDS = "1"


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def channels(
    app: Any,
    database: Any,
    redis_url: str,
    redis_prefix: str,
    mailbox: Mailbox,
    fake_slack: FakeSlack,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, Worker]]:
    """A web app and a worker with its beat (the sweep every second) on a queue of
    their own, Slack switched on and pointed at the fake."""
    from signoff.app import create_app

    queue = f"{redis_prefix}channels-{uuid.uuid4().hex[:6]}"
    slack = {
        "SIGNOFF_SLACK_API_URL": f"{fake_slack.url}/api/",
        "SIGNOFF_OUTBOUND_ALLOW": "127.0.0.1/32",
    }
    web = create_app(
        app_config(database, redis_url, redis_prefix, **slack)
        | {"SIGNOFF_WORKER_QUEUE": queue, "FAB_APPROVAL_SLACK_NOTIFICATIONS": True}
    )
    data = tmp_path_factory.mktemp("channels")
    worker = start_worker(
        database,
        broker_url=redis_url,
        redis_url=redis_url,
        queue=queue,
        smtp_url=mailbox.url,
        log=data / "worker.log",
        beat=True,
        extra_env={
            **slack,
            "FAB_APPROVAL_SLACK_NOTIFICATIONS": "true",
            "SIGNOFF_OUTBOX_SWEEP_SECONDS": SWEEP_SECONDS,
            "SIGNOFF_DATA_DIR": str(data),  # the beat's schedule file
        },
    )
    yield web, worker
    worker.stop()


def _wait(predicate: Any, what: str, worker: Worker, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}\n{worker.log_text()[-3000:]}"
        time.sleep(0.05)


def test_a_slack_approval_message_through_the_worker(
    channels: tuple[Any, Worker], tenant_factory: Any, fake_slack: FakeSlack, database: Any
) -> None:
    web, worker = channels
    tenant = expense_tenant(tenant_factory, web)
    connect(web, tenant, new_secret())
    slack_user = f"U{uuid.uuid4().hex[:8].upper()}"
    link(web, tenant, "manager", slack_user)
    api = Api(fresh_client(web), tenant)
    title = f"Slacked {tenant.slug}"
    rid = api.submit(5000, title=title)

    _wait(lambda: fake_slack.messages_to(slack_user), "no Slack message", worker)
    (message,) = fake_slack.messages_to(slack_user)
    assert title in str(message)
    assert {"signoff_approve", "signoff_reject"} <= set(buttons(message)), message

    def delivery() -> tuple[Any, ...]:
        ((channel, status, attempts),) = rows(
            database,
            "SELECT d.channel, d.status, d.attempts FROM notification_delivery d "
            "JOIN notification_outbox o ON o.tenant_id = d.tenant_id AND o.id = d.outbox_id "
            "WHERE o.request_id = %s AND d.channel = 'slack'",
            rid,
        )
        return (channel, status, attempts)

    # The message is out before the worker commits its delivery row: wait for that.
    _wait(lambda: delivery()[1] != "pending", "the Slack delivery was never recorded", worker)
    assert delivery() == ("slack", "sent", 1)


def test_a_webhook_fails_once_and_the_retry_succeeds(
    channels: tuple[Any, Worker], tenant_factory: Any, database: Any
) -> None:
    web, worker = channels
    tenant = expense_tenant(tenant_factory, web)
    api = Api(fresh_client(web), tenant)
    receiver = Receiver(status=500).start()
    try:
        created = api.post(
            "/api/v1/webhooks/",
            json={"url": receiver.url, "event_types": ["request.submitted"]},
        )
        assert created.status_code == 201, created.get_json()
        receiver.secret = created.get_json()["secret"]
        rid = api.submit(300, title=f"Retried {tenant.slug}")

        _wait(lambda: receiver.received, "no first attempt", worker)
        receiver.status = 200  # the receiver recovers; the first attempt got a 500
        _wait(lambda: len(receiver.received) >= 2, "no retry", worker)
        first, second = receiver.received[:2]
        assert first.verified is not None and second.verified is not None
        assert second.verified["data"]["request_id"] == rid
        assert first.headers["webhook-id"] == second.headers["webhook-id"]

        def state() -> tuple[Any, ...]:
            found = rows(
                database,
                "SELECT d.status, d.attempts, d.response_code FROM notification_delivery d "
                "JOIN notification_outbox o ON o.tenant_id = d.tenant_id "
                "AND o.id = d.outbox_id WHERE o.request_id = %s AND d.channel = 'webhook'",
                rid,
            )
            assert len(found) == 1, found
            return found[0]

        _wait(lambda: state()[0] == "sent", "the delivery is not marked sent", worker)
        assert state() == ("sent", 2, 200)
        assert len(receiver.received) == 2  # nothing more after the success
    finally:
        receiver.stop()
