"""Fixtures for the web pages: tenants with the starter workflows, logged-in clients."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from email.message import Message
from typing import Any

import pytest

from signoff.provisioning.onboarding import STARTER_WORKFLOWS
from tests.conftest import app_config
from tests.fixtures.tenants import PASSWORD, fresh_client, web_login
from tests.integration.worker.conftest import Mailbox, body

#: SIGNOFF_BASE_URL of the apps that send mail here (links in mail start with it).
BASE = "http://signoff.test"


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailbox]:
    """The embedded SMTP server (aiosmtpd) of the quick start, keeping what it receives."""
    from signoff.devservers import start_embedded_smtp

    smtp = start_embedded_smtp(tmp_path_factory.mktemp("account-mail"))
    yield Mailbox(smtp)
    smtp.stop()


def mail_app_for(
    database: Any, redis_url: str, redis_prefix: str, smtp_url: str, **extra: Any
) -> Any:
    """An app that sends its e-mail to ``smtp_url``, with its own rate-limit buckets."""
    from signoff.app import create_app

    return create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}mail-{uuid.uuid4().hex[:6]}:",
            SIGNOFF_SMTP_URL=smtp_url,
            SIGNOFF_BASE_URL=BASE,
            **extra,
        )
    )


@pytest.fixture(scope="module")
def mail_app(database: Any, redis_url: str, redis_prefix: str, mailbox: Mailbox, app: Any) -> Any:
    # ``app`` first: its fixture syncs FAB's roles (the Member role new accounts get).
    return mail_app_for(database, redis_url, redis_prefix, mailbox.url)


def mails_to(mailbox: Mailbox, address: str, expect: int = 1) -> list[Message]:
    """The messages to ``address`` once every queued account e-mail was sent."""
    from signoff.provisioning.verification import drain

    drain()  # the jobs are done, and the server wrote each message before accepting it
    found = [m for m in mailbox.messages() if m["To"] == address]
    assert len(found) == expect, [m["Subject"] for m in found]
    return found


def link(message: Message, kind: str) -> str:
    """The path of the first link in ``message`` that contains ``kind``."""
    match = re.search(rf"https?://[^/\s]+(\S*?{re.escape(kind)}\S*)", body(message))
    assert match, body(message)
    return match.group(1)


@pytest.fixture
def portal_tenant(tenant_factory: Callable[..., Any], app: Any) -> Any:
    """A fresh tenant with the three starter workflows saved."""
    from tests.integration.workflow.conftest import save

    t = tenant_factory()
    for key, definition in STARTER_WORKFLOWS.items():
        save(app, t, key, definition)
    return t


@pytest.fixture
def login(app: Any) -> Callable[..., Any]:
    """``login(username)`` -> a test client signed in as that user."""

    def make(username: str, password: str = PASSWORD) -> Any:
        client = fresh_client(app)
        web_login(client, username, password)
        return client

    return make


def submit(
    app: Any,
    tenant: Any,
    key: str,
    data: dict[str, Any],
    who: str = "alice",
    title: str = "Team dinner",
) -> uuid.UUID:
    from signoff.workflow.actions import do_submit
    from tests.integration.workflow.conftest import actor, in_tenant

    with in_tenant(app, tenant) as session:
        result = do_submit(
            session, actor=actor(tenant, who), workflow_key=key, input_data=data, title=title
        )
    return result.request_id


def text_of(resp: Any) -> str:
    return str(resp.get_data(as_text=True))


_CSRF_VALUE = re.compile(r'(?<=name="csrf_token" )value="[^"]*"')


def comparable_page(resp: Any) -> str:
    """The page with its CSRF token masked: the token carries a timestamp, so two
    otherwise identical pages differ in it whenever a second boundary falls between."""
    return _CSRF_VALUE.sub('value="<csrf>"', text_of(resp))


def strip_tags(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
