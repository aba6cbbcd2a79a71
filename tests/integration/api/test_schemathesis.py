"""Schemathesis against the live app (WSGI) and its own ``/api/v1/_openapi``.

Schemathesis's engine (``schemathesis.engine.from_schema(...).execute()``; its pytest
plugin does not load under pytest 9) runs three phases to completion: the examples the
document declares, the coverage phase (every operation: positive cases, boundary values
and, for operations with a request body, negative ones), and stateful scenarios that
follow the document's links (submit -> get/approve/reject/...). Requests are sent as the
tenant admin, submissions as a requester and decisions as the approver. Checks: no 5xx,
every response conforms to the schema documented for its status, and every status is
documented. The run is bounded so that it stays short on a loaded machine: a fixed seed,
deterministic generation, at most a few examples per operation, short scenarios, no
time budget (each phase runs to its end, never to a deadline).
"""

from __future__ import annotations

import ast
import json
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis import engine
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import StopReason, events

from tests.conftest import app_config
from tests.fixtures.tenants import api_token, auth, make_tenant
from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import save

CHECKS = ("not_a_server_error", "status_code_conformance", "response_schema_conformance")
PHASES = ("examples", "coverage", "stateful")


@pytest.fixture(scope="module")
def st_app(database: Any, redis_url: str, redis_prefix: str) -> Any:
    from signoff.app import create_app

    # Generated traffic would hit the approval, login and plan limits at once; their
    # 429 answers are covered by test_errors.py and the rate-limit tests.
    return create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}st:",
            FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=100_000,
            AUTH_RATE_LIMIT="100000 per second",
            SIGNOFF_RATELIMIT_API_PLANS={
                plan: "100000 per second" for plan in ("free", "team", "enterprise")
            },
        )
    )


@pytest.fixture(scope="module")
def st_tenant(st_app: Any, app: Any) -> Any:
    tenant = make_tenant(st_app)
    save(st_app, tenant, "expense_approval", spec_expense())
    return tenant


@pytest.fixture(scope="module")
def tokens(st_app: Any, st_tenant: Any) -> dict[str, dict[str, str]]:
    client = st_app.test_client()
    out = {
        who: auth(api_token(client, st_tenant.username(who), st_tenant.slug))
        for who in ("admin", "manager", "alice")
    }
    out["anonymous"] = {}
    return out


def test_spec_is_valid_openapi(st_app: Any, st_tenant: Any) -> None:
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


#: Operations that end the calling token's own session (or every other one of its
#: person): run by the fuzzer they would sign the shared tokens out, and every later
#: case would be a 401. tests/integration/views/test_sessions.py covers them.
SIGNS_OUT = {
    ("post", "/api/v1/security/sessions/logout"),
    ("post", "/api/v1/security/sessions/revoke-others"),
}


def test_operations_that_sign_out_are_documented_and_left_out(st_app: Any) -> None:
    document = st_app.test_client().get("/api/v1/_openapi").get_json()
    for method, path in SIGNS_OUT:
        assert method in document["paths"][path], (method, path)
    steered = _steered_document(st_app)
    for method, path in SIGNS_OUT:
        assert method not in steered["paths"].get(path, {}), (method, path)


def _steered_document(st_app: Any) -> dict[str, Any]:
    """The app's own document, with submissions steered to the tenant's real workflow so
    that cases get past POST /requests/ and scenarios follow its links."""
    document: dict[str, Any] = st_app.test_client().get("/api/v1/_openapi").get_json()
    for method, path in SIGNS_OUT:
        operations = document["paths"].get(path, {})
        operations.pop(method, None)
        if not any(k in operations for k in ("get", "post", "put", "patch", "delete")):
            document["paths"].pop(path, None)
    submit = document["components"]["schemas"]["SubmitSchema"]["properties"]
    submit["workflow"] = {"type": "string", "enum": ["expense_approval"]}
    submit["input_data"] = {
        "type": "object",
        "properties": {"amount": {"type": "integer", "minimum": 0, "maximum": 100_000}},
        "required": ["amount"],
        "additionalProperties": False,
    }
    return document


def _as(who: str, tokens: dict[str, dict[str, str]], **selector: str) -> dict[str, Any]:
    return {**selector, "headers": tokens[who]}


def _config(tokens: dict[str, dict[str, str]]) -> SchemathesisConfig:
    generation = {
        "deterministic": True,  # derandomized: the same cases on every run
        "max-examples": 4,  # per operation and phase (stateful: scenarios)
        "database": "none",
        "no-shrink": True,
    }
    checks: dict[str, Any] = {"enabled": False, **{name: {"enabled": True} for name in CHECKS}}
    return SchemathesisConfig.from_dict(
        {
            "seed": 20261203,
            # Two threads: one waits on PostgreSQL while the other runs (a third gains
            # nothing on two cores).
            "workers": 2,
            "headers": tokens["admin"],
            "generation": {**generation, "mode": "positive"},
            "checks": checks,
            "phases": {
                "examples": {"enabled": True},
                # 405s for methods a path does not have are covered by test_errors.py.
                "coverage": {
                    "enabled": True,
                    "unexpected-methods": [],
                    "generate-duplicate-query-parameters": False,
                },
                # Fuzzing never ends on its own (it repeats until a time budget); the
                # coverage phase enumerates what it would sample.
                "fuzzing": {"enabled": False},
                "stateful": {"enabled": True, "max-steps": 6},
            },
            "operations": [
                # Negative cases where a body is parsed: every write operation.
                {"include-method": ["POST", "PUT", "PATCH"], "generation": {"mode": "all"}},
                # Requests are submitted, withdrawn and resubmitted by a requester ...
                _as("alice", tokens, **{"include-path-regex": "^/api/v1/requests/$"}),
                _as("alice", tokens, **{"include-path-regex": "/(withdraw|resubmit)$"}),
                # ... and decided by the approver.
                _as("manager", tokens, **{"include-path-regex": "/(approve|reject)/"}),
                _as("manager", tokens, **{"include-path-regex": "/request-changes$"}),
            ],
        }
    )


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    phases: dict[str, str] = field(default_factory=dict)
    cases: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, set[int]] = field(default_factory=dict)
    stop: StopReason | None = None


def _collect(stream: Iterator[events.EngineEvent]) -> Outcome:
    out = Outcome()
    for event in stream:
        if isinstance(event, events.PhaseFinished):
            out.phases[event.phase.name.value] = event.status.value
        elif isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            phase = event.phase.value
            out.cases[phase] = out.cases.get(phase, 0) + len(recorder.cases)
            for checks in recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        out.failures.append(
                            f"[{phase}] {recorder.label}: {check.name}: {failure.title}: "
                            f"{failure.message[:400]}\n{check.failure_info.code_sample[:600]}"
                        )
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    seen = out.statuses.setdefault(recorder.label, set())
                    seen.add(interaction.response.status_code)
        elif isinstance(event, events.NonFatalError):
            trace = "".join(traceback.format_exception(event.value))[-2000:]
            out.failures.append(f"error in {event.label}: {event.info.title}: {trace}")
        elif isinstance(event, events.FatalError):
            out.failures.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            out.stop = event.stop_reason
    return out


@pytest.fixture
def serial_ast_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """One ``ast.parse`` at a time while the engine's two threads generate cases.

    Hypothesis describes the coverage phase's filter lambdas by parsing their source, and
    CPython 3.11's parser is not safe to enter from two threads at once (``SystemError:
    AST constructor recursion depth mismatch``). The app never parses Python at run time.
    """
    lock = threading.Lock()
    parse = ast.parse

    def serial(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return parse(*args, **kwargs)

    monkeypatch.setattr(ast, "parse", serial)


@pytest.mark.usefixtures("serial_ast_parse")
def test_examples_coverage_and_stateful_phases_run_to_completion(
    st_app: Any, tokens: dict[str, dict[str, str]]
) -> None:
    schema = schemathesis.openapi.from_dict(_steered_document(st_app), config=_config(tokens))
    schema.app = st_app
    started = time.monotonic()
    out = _collect(engine.from_schema(schema).execute())
    assert out.stop == StopReason.COMPLETED, out.stop
    assert not out.failures, "\n\n".join(sorted(set(out.failures)))
    for phase in PHASES:
        assert out.phases.get(phase) == "success", out.phases
    assert out.cases.get("coverage", 0) >= 500, out.cases
    assert out.cases.get("stateful", 0) > 0, out.cases
    # The links were followed: submissions succeeded and were acted upon by id.
    assert 201 in out.statuses.get("POST /api/v1/requests/", set()), out.statuses
    followed = [
        label
        for label, statuses in out.statuses.items()
        if "{id}" in label and statuses & {200, 201, 409, 422}
    ]
    assert followed, out.statuses
    # A slow run is reported, not failed (no wall-clock asserts).
    print(f"schemathesis: {out.cases} cases in {time.monotonic() - started:.1f}s")


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
