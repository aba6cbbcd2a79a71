"""Fixtures for MFA, rate limits and input hardening: tenants, clients, real TOTP codes."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import pyotp
import pytest

from tests.fixtures.tenants import PASSWORD, api_token, auth, fresh_client
from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import actor, in_tenant, save

VERIFY = "/api/v1/security/mfa/verify"
ENROLL = "/api/v1/security/mfa/enroll"
CONFIRM = "/api/v1/security/mfa/confirm"
RECOVERY = "/api/v1/security/mfa/recovery"
STATUS = "/api/v1/security/mfa/status"


def code(secret: str, steps: int = 0) -> str:
    """The code an authenticator shows ``steps`` time steps (30 s) from now."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


def closed_port() -> int:
    """A TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Person:
    """One member of a tenant seen through the API: a client, tokens, an authenticator."""

    def __init__(self, app: Any, tenant: Any, who: str) -> None:
        self.app = app
        self.tenant = tenant
        self.who = who
        self.client = fresh_client(app)
        self.token = self.login()
        self.secret: str | None = None
        self.recovery_codes: list[str] = []
        self.enrol_code: str | None = None  # spent on the enrolment: a replay must fail

    @property
    def user_id(self) -> int:
        return int(self.tenant.user(self.who))

    def login(self) -> str:
        """A new access token (a new ``jti``: it starts without MFA verification)."""
        return api_token(self.client, self.tenant.username(self.who), self.tenant.slug)

    def relogin(self) -> str:
        self.token = self.login()
        return self.token

    def post(self, path: str, json: Any = None, token: str | None = None, **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=auth(token or self.token), **kw)

    def get(self, path: str, token: str | None = None, **kw: Any) -> Any:
        return self.client.get(path, headers=auth(token or self.token), **kw)

    def enroll(self) -> list[str]:
        """Enrol and confirm with the current code; the recovery codes."""
        resp = self.post(ENROLL)
        assert resp.status_code == 201, resp.get_json()
        self.secret = resp.get_json()["secret"]
        self.enrol_code = code(self.secret)
        resp = self.post(CONFIRM, {"code": self.enrol_code})
        assert resp.status_code == 200, resp.get_json()
        self.recovery_codes = resp.get_json()["recovery_codes"]
        return self.recovery_codes

    def verify(self, steps: int = 1, token: str | None = None) -> Any:
        assert self.secret is not None
        return self.post(VERIFY, {"code": code(self.secret, steps)}, token=token)


@pytest.fixture
def expense_tenant(tenant_factory: Callable[..., Any], app: Any) -> Any:
    """A fresh tenant with the spec's expense workflow (Finance step requires MFA)."""
    tenant = tenant_factory()
    save(app, tenant, "expense_approval", spec_expense())
    return tenant


@pytest.fixture
def person(app: Any) -> Callable[[Any, str], Person]:
    def make(tenant: Any, who: str) -> Person:
        return Person(app, tenant, who)

    return make


def submit(app: Any, tenant: Any, amount: int = 5000, who: str = "alice") -> uuid.UUID:
    """A request through the action layer (``amount`` > 1000 needs Finance, with MFA)."""
    from signoff.workflow.actions import do_submit

    with in_tenant(app, tenant) as session:
        result = do_submit(
            session,
            actor=actor(tenant, who),
            workflow_key="expense_approval",
            input_data={"amount": amount},
            title=f"Expense {uuid.uuid4().hex[:6]}",
        )
    return result.request_id


def approve(app: Any, tenant: Any, request_id: Any, step: int, who: str, **kw: Any) -> Any:
    from signoff.workflow.actions import do_approve

    with in_tenant(app, tenant) as session:
        return do_approve(
            session, actor=actor(tenant, who, **kw), request_id=request_id, step_index=step
        )


def at_finance_step(app: Any, tenant: Any) -> uuid.UUID:
    """A request whose manager step is approved: Finance (MFA) decides next."""
    rid = submit(app, tenant)
    approve(app, tenant, rid, 0, "manager")
    return rid


__all__ = [
    "CONFIRM",
    "ENROLL",
    "PASSWORD",
    "RECOVERY",
    "STATUS",
    "VERIFY",
    "Person",
    "approve",
    "at_finance_step",
    "closed_port",
    "code",
    "fresh_client",
    "submit",
]
