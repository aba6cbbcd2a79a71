"""Schemathesis against the live app (WSGI) and its own ``/api/v1/_openapi``.

Hundreds of generated requests, as a tenant admin, as a plain member and without
credentials, plus stateful scenarios that follow the spec's links (submit ->
get/approve/reject/...). Checks: no 5xx, every response conforms to the schema
documented for its status, and every status is documented.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import app_config
from tests.fixtures.tenants import api_token, auth, make_tenant
from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import save

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@pytest.fixture(scope="module")
def st_app(database: Any, redis_url: str, redis_prefix: str) -> Any:
    from signoff.app import create_app

    # Generated traffic would hit the approval and login limits at once; their
    # 429 answers are covered by test_errors.py.
    return create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}st:",
            FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=100_000,
            AUTH_RATE_LIMIT="100000 per second",
        )
    )


@pytest.fixture(scope="module")
def st_tenant(st_app: Any, app: Any) -> Any:
    tenant = make_tenant(st_app)
    save(st_app, tenant, "expense_approval", spec_expense())
    return tenant


@pytest.fixture(scope="module")
def schema(st_app: Any, st_tenant: Any) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/_openapi", st_app)


@pytest.fixture(scope="module")
def tokens(st_app: Any, st_tenant: Any) -> dict[str, dict[str, str]]:
    client = st_app.test_client()
    out = {
        who: auth(api_token(client, st_tenant.username(who), st_tenant.slug))
        for who in ("admin", "manager", "alice")
    }
    out["anonymous"] = {}
    return out


#: Operations that end the calling token's own session (or every other one of its
#: person): run by the fuzzer they would sign the shared tokens out, and every later
#: case would be a 401. tests/integration/views/test_sessions.py covers them.
SIGNS_OUT = {
    "POST /api/v1/security/sessions/logout",
    "POST /api/v1/security/sessions/revoke-others",
}


def _operations(schema: Any) -> Iterator[Any]:
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label not in SIGNS_OUT:
            yield operation


def _fuzz(schema: Any, headers: dict[str, str], examples: int) -> tuple[int, list[str]]:
    """Run every operation ``examples`` times; return (cases, failures)."""
    failures: list[str] = []
    count = 0
    for operation in _operations(schema):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            nonlocal count
            count += 1
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # collect them all, then fail once
            failures.append(f"{operation.label}: {exc}")
    return count, failures


def test_spec_is_valid_openapi(st_app: Any, schema: Any) -> None:
    from openapi_spec_validator import validate

    document = st_app.test_client().get("/api/v1/_openapi").get_json()
    validate(document)
    paths = document["paths"]
    for path in (
        "/api/v1/approval-workflow/pending",
        "/api/v1/approval-workflow/approve/{id}/{step}",
        "/api/v1/approval-workflow/reject/{id}",
        "/api/v1/approval-workflow/history/{id}",
    ):
        assert path in paths, path
    # Every operation of ours names request and response schemas and the error shape.
    ours = (
        "approval-workflow",
        "requests",
        "delegations",
        "workflows",
        "members",
        "audit",
        "metrics",
        "api-keys",
    )
    for path, ops in paths.items():
        if path.split("/")[3] not in ours:
            continue
        for method, op in ops.items():
            assert op.get("security") == [{"jwt": []}, {"api_key": []}], (path, method)
            assert op["responses"]["429"] == {"$ref": "#/components/responses/429"}
            assert "200" in op["responses"] or "201" in op["responses"], (path, method)
            assert op["responses"]["401"] == {"$ref": "#/components/responses/401"}


def test_operations_that_sign_out_are_documented_and_left_out(schema: Any) -> None:
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert labels >= SIGNS_OUT
    assert not {operation.label for operation in _operations(schema)} & SIGNS_OUT


def test_generated_requests_as_admin_member_and_anonymous(schema: Any, tokens: Any) -> None:
    started = time.monotonic()
    total = 0
    failures: list[str] = []
    for who, examples in (("admin", 8), ("alice", 3), ("anonymous", 2)):
        count, found = _fuzz(schema, tokens[who], examples)
        total += count
        failures += [f"[{who}] {f}" for f in found]
    assert total >= 300, total
    assert not failures, "\n\n".join(failures)
    # Keep the suite fast; a slow run is reported, not failed (no wall-clock asserts).
    print(f"schemathesis: {total} cases in {time.monotonic() - started:.1f}s")


def _steered_schema(st_app: Any) -> Any:
    """The app's own document, with submissions steered to the tenant's real workflow so
    that scenarios get past POST /requests/ and follow its links."""
    document = st_app.test_client().get("/api/v1/_openapi").get_json()
    submit = document["components"]["schemas"]["SubmitSchema"]["properties"]
    submit["workflow"] = {"type": "string", "enum": ["expense_approval"]}
    submit["input_data"] = {
        "type": "object",
        "properties": {"amount": {"type": "integer", "minimum": 0, "maximum": 100_000}},
        "required": ["amount"],
        "additionalProperties": False,
    }
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = st_app
    return loaded.include(path_regex="^/api/v1/(requests|approval-workflow)/")


def _acting_user(label: str) -> str:
    """Requests are submitted by a requester and decided by a manager; the rest reads as
    the tenant admin (who may see every request)."""
    if label == "POST /api/v1/requests/" or label.endswith(("/withdraw", "/resubmit")):
        return "alice"
    if "/approve/" in label or "/reject/" in label or label.endswith("/request-changes"):
        return "manager"
    return "admin"


def test_stateful_links(st_app: Any, tokens: Any) -> None:
    """Scenarios along the spec's links: submit -> get, timeline, history, approve step 0,
    reject, request changes, comment, withdraw, resubmit."""
    seen: dict[str, set[int]] = {}

    class Machine(_steered_schema(st_app).as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": tokens[_acting_user(case.operation.label)]}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            seen.setdefault(case.operation.label, set()).add(response.status_code)
            case.validate_response(response, checks=CHECKS)

    Machine.run(
        settings=settings(
            max_examples=40,
            stateful_step_count=8,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    # The links were followed: submissions succeeded and were acted upon by id.
    assert 201 in seen.get("POST /api/v1/requests/", set()), seen
    followed = [
        label
        for label, statuses in seen.items()
        if "{id}" in label and statuses & {200, 201, 409, 422}
    ]
    assert followed, seen


def test_spec_is_served_without_credentials(st_app: Any) -> None:
    resp = st_app.test_client().get("/api/v1/_openapi")
    assert resp.status_code == 200
    assert json.loads(resp.get_data())["openapi"].startswith("3.")


def test_swagger_page_renders_for_a_fab_admin(st_app: Any) -> None:
    from signoff.extensions import db
    from tests.fixtures.tenants import PASSWORD, web_login

    with st_app.app_context():
        sm = st_app.appbuilder.sm
        name = "swagger-operator"
        if sm.find_user(username=name) is None:
            sm.add_user(
                name, "Swagger", "Operator", f"{name}@example.com", sm.find_role("Admin"), PASSWORD
            )
        db.session.commit()
    client = st_app.test_client()
    web_login(client, name)
    page = client.get("/swagger/v1")
    assert page.status_code == 200
    assert "/api/v1/_openapi" in page.get_data(as_text=True)
