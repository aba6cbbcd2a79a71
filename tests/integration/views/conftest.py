"""Fixtures for the web pages: tenants with the starter workflows, logged-in clients."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from signoff.provisioning.onboarding import STARTER_WORKFLOWS
from tests.fixtures.tenants import PASSWORD, fresh_client, web_login


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
