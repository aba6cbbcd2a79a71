"""API fixtures: tenants with the specification's expense workflow, tokens, submissions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.fixtures.tenants import api_token, auth
from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import save


class Api:
    """A test client bound to one tenant: ``api.h("alice")`` are alice's headers."""

    def __init__(self, client: Any, tenant: Any) -> None:
        self.client = client
        self.tenant = tenant
        self._tokens: dict[str, str] = {}

    def token(self, who: str) -> str:
        if who not in self._tokens:
            self._tokens[who] = api_token(self.client, self.tenant.username(who), self.tenant.slug)
        return self._tokens[who]

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {**auth(self.token(who)), **extra}

    def get(self, path: str, who: str = "admin", **kw: Any) -> Any:
        return self.client.get(path, headers=self.h(who, **kw.pop("headers", {})), **kw)

    def post(self, path: str, who: str = "admin", **kw: Any) -> Any:
        return self.client.post(path, headers=self.h(who, **kw.pop("headers", {})), **kw)

    def put(self, path: str, who: str = "admin", **kw: Any) -> Any:
        return self.client.put(path, headers=self.h(who, **kw.pop("headers", {})), **kw)

    def delete(self, path: str, who: str = "admin", **kw: Any) -> Any:
        return self.client.delete(path, headers=self.h(who, **kw.pop("headers", {})), **kw)

    def submit(self, amount: int | str = 500, who: str = "alice", **body: Any) -> str:
        payload = {
            "workflow": "expense_approval",
            "title": f"Expense {uuid.uuid4().hex[:6]}",
            "input_data": {"amount": amount},
            **body,
        }
        resp = self.post("/api/v1/requests/", who, json=payload)
        assert resp.status_code == 201, resp.get_json()
        return str(resp.get_json()["request_id"])

    def uid(self, who: str) -> int:
        return int(self.tenant.user(who))


def expense_tenant(tenant_factory: Any, app: Any) -> Any:
    t = tenant_factory()
    save(app, t, "expense_approval", spec_expense())
    return t


@pytest.fixture(scope="module")
def ta(tenant_factory: Any, app: Any) -> Any:
    """Tenant A with the expense workflow (shared by a module's tests)."""
    return expense_tenant(tenant_factory, app)


@pytest.fixture(scope="module")
def tb(tenant_factory: Any, app: Any) -> Any:
    """Tenant B with the expense workflow."""
    return expense_tenant(tenant_factory, app)


@pytest.fixture
def api_a(client: Any, ta: Any) -> Api:
    return Api(client, ta)


@pytest.fixture
def api_b(client: Any, tb: Any) -> Api:
    return Api(client, tb)


def assert_error(resp: Any, status: int, code: str | None = None, field: str | None = None) -> dict:
    """The response is an error of ``status`` in the one error shape."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    body = resp.get_json()
    extra = {"mfa_endpoint"} if body.get("code") == "mfa_required" else set()
    assert set(body) == {"code", "message", "field", "errors"} | extra, body
    assert isinstance(body["code"], str) and isinstance(body["message"], str)
    if code is not None:
        assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body
