"""Issue 12 item 12: a battery of bad input against every write endpoint of the OpenAPI
document, FAB's login (API and web form) and the sign-up form.

Wrong types, missing and extra fields, 1 MB and 10 MB bodies, deep nesting, invalid
UTF-8, NUL, unpaired surrogates, huge and negative numbers, malformed JSON and wrong
content types. Whatever the endpoint does with them, it never answers 5xx, and every
answer that blames the input (400, 413, 415, 422) names the field.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import app_config
from tests.fixtures.tenants import PASSWORD, api_token, auth, make_tenant
from tests.fixtures.workflows import spec_expense
from tests.integration.views.conftest import BASE, mailbox  # noqa: F401 (fixture)
from tests.integration.workflow.conftest import save

BLAMES_INPUT = {400, 413, 415, 422}
ONE_MB = 1_000_000
TEN_MB = 10 * 1024 * 1024
SURROGATE = '"a\\ud800b"'  # JSON text: a lone surrogate once decoded
NO_LIMIT = "100000 per second"

#: Values every property gets in turn (JSON text, so that surrogates survive).
PROPERTY_VALUES = [
    "1" + "0" * 40,
    "-1" + "0" * 40,
    "-1",
    "1e308",
    "null",
    '"a\\u0000b"',
    SURROGATE,
    '{"x": [1]}',
    '[1, "a"]',
    json.dumps("x" * 5000),
]

#: Whole bodies, whatever the endpoint: (label, bytes, content type).
BODIES: list[tuple[str, bytes, str | None]] = [
    ("array", b"[]", "application/json"),
    ("string", b'"x"', "application/json"),
    ("number", b"12345678901234567890123", "application/json"),
    ("null", b"null", "application/json"),
    ("empty object", b"{}", "application/json"),
    ("extra field", b'{"zz_not_a_field": 1}', "application/json"),
    ("deep array", b"[" * 5000 + b"]" * 5000, "application/json"),
    ("deep object", b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json"),
    ("invalid utf-8", b'{"title": "\xff\xfe"}', "application/json"),
    ("encoded surrogate", b'{"title": "\xed\xa0\x80"}', "application/json"),
    ("nul", b'{"title": "a\\u0000b"}', "application/json"),
    ("surrogate", b'{"title": "\\udfff"}', "application/json"),
    ("malformed", b'{"a": ', "application/json"),
    ("single quotes", b"{'a': 1}", "application/json"),
    ("NaN", b'{"a": NaN}', "application/json"),
    ("1 MB", json.dumps({"title": "x" * ONE_MB}).encode(), "application/json"),
    ("10 MB", b'{"title": "' + b"x" * TEN_MB + b'"}', "application/json"),
    ("text/plain", b"hello", "text/plain"),
    ("xml", b"<a>1</a>", "application/xml"),
    ("form", b"title=a%00b&x=%ff", "application/x-www-form-urlencoded"),
    (
        "multipart",
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
    ),
    ("no content type", b'{"a": 1}', None),
]


@pytest.fixture(scope="module")
def battery_app(database: Any, redis_url: str, redis_prefix: str, mailbox: Any, app: Any) -> Any:  # noqa: F811
    from signoff.app import create_app

    # Limits high enough that the battery meets the validation, not the rate limits (their
    # 429s are tested elsewhere); mail goes to the embedded SMTP server (sign-up needs it).
    return create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}battery-{uuid.uuid4().hex[:6]}:",
            SIGNOFF_SMTP_URL=mailbox.url,
            SIGNOFF_BASE_URL=BASE,
            FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=100_000,
            AUTH_RATE_LIMIT=NO_LIMIT,
            SIGNOFF_RATELIMIT_API_PLANS={p: NO_LIMIT for p in ("free", "team", "enterprise")},
            SIGNOFF_RATELIMIT_LOGIN_ADDRESS=NO_LIMIT,
            SIGNOFF_RATELIMIT_LOGIN_ACCOUNT=NO_LIMIT,
            SIGNOFF_RATELIMIT_LOGIN_ACCOUNT_CEILING=NO_LIMIT,
            SIGNOFF_RATELIMIT_MFA_ACCOUNT=NO_LIMIT,
            SIGNOFF_RATELIMIT_MFA_ADDRESS=NO_LIMIT,
            SIGNOFF_SIGNUP_RATE_LIMIT=NO_LIMIT,
            SIGNOFF_RATELIMIT_ACCOUNT_MAIL_ADDRESS=NO_LIMIT,
            SIGNOFF_RATELIMIT_ACCOUNT_MAIL_EMAIL=NO_LIMIT,
        )
    )


@pytest.fixture(scope="module")
def setting(battery_app: Any) -> dict[str, Any]:
    """A tenant with a request, a role, and the admin's headers; values for path params."""
    tenant = make_tenant(battery_app)
    save(battery_app, tenant, "expense_approval", spec_expense())
    client = battery_app.test_client()
    admin = auth(api_token(client, tenant.username("admin"), tenant.slug))
    alice = auth(api_token(client, tenant.username("alice"), tenant.slug))
    submitted = client.post(
        "/api/v1/requests/",
        headers=alice,
        json={"workflow": "expense_approval", "title": "Battery", "input_data": {"amount": 5}},
    )
    assert submitted.status_code == 201, submitted.get_json()
    role = client.post("/api/v1/tenant-roles/", headers=admin, json={"name": "Battery"})
    assert role.status_code == 201, role.get_json()
    return {
        "tenant": tenant,
        "headers": admin,
        "params": {
            "id": submitted.get_json()["request_id"],
            "step": "0",
            "key": "expense_approval",
            "pk": role.get_json()["id"],
            "user_id": str(tenant.user("bob")),
            "delivery_id": str(uuid.uuid4()),
        },
    }


def _write_operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            if method in ("post", "put", "patch", "delete"):
                yield method, path, op


def _properties(document: dict[str, Any], op: dict[str, Any]) -> list[str]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema", {})
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return sorted(schema.get("properties", {}))


def _path(template: str, params: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: params[m.group(1)], template)


def _problems(resp: Any, label: str) -> list[str]:
    status = resp.status_code
    if status >= 500:
        return [f"{label}: {status} {resp.get_data(as_text=True)[:300]}"]
    if status in BLAMES_INPUT:
        body = resp.get_json(silent=True)
        if not isinstance(body, dict) or not body.get("field"):
            return [f"{label}: {status} names no field: {resp.get_data(as_text=True)[:300]}"]
    return []


def _send(client: Any, method: str, path: str, body: bytes, ctype: str | None, headers: Any) -> Any:
    hdrs = dict(headers)
    if ctype is not None:
        hdrs["Content-Type"] = ctype
    return client.open(path, method=method.upper(), data=body, headers=hdrs)


def test_every_write_endpoint_survives_the_battery(battery_app: Any, setting: Any) -> None:
    client = battery_app.test_client()
    document = client.get("/api/v1/_openapi").get_json()
    problems: list[str] = []
    operations = list(_write_operations(document))
    assert len(operations) >= 30, [f"{m} {p}" for m, p, _ in operations]
    # The admin's own MFA and the members' state change last (enrolment would ask the
    # admin for a code; deactivating the admin's peers is harmless).
    operations.sort(key=lambda o: ("/mfa" in o[1] or "/members/" in o[1], o[1], o[0]))
    sent = 0
    for method, template, op in operations:
        path = _path(template, setting["params"])
        headers = {} if template.endswith(("/login", "/refresh")) else setting["headers"]
        for label, body, ctype in BODIES:
            resp = _send(client, method, path, body, ctype, headers)
            sent += 1
            problems += _problems(resp, f"{method.upper()} {template} [{label}]")
        for prop in _properties(document, op):
            for value in PROPERTY_VALUES:
                body = ("{" + json.dumps(prop) + ": " + value + "}").encode()
                resp = _send(client, method, path, body, "application/json", headers)
                sent += 1
                problems += _problems(resp, f"{method.upper()} {template} [{prop}={value[:20]}]")
    assert sent > 1000, sent
    assert not problems, "\n".join(problems)


FORM = "application/x-www-form-urlencoded"


def _form_battery(fields: dict[str, str]) -> Iterator[tuple[str, bytes, str | None]]:
    def encode(values: dict[str, str]) -> bytes:
        from urllib.parse import urlencode

        return urlencode(values).encode()

    yield "missing fields", b"", FORM
    yield "extra field", encode({**fields, "zz_extra": "1"}), FORM
    for name in fields:
        others = {k: v for k, v in fields.items() if k != name}
        yield f"{name} missing", encode(others), FORM
        yield f"{name} NUL", encode({**fields, name: "a\x00b"}), FORM
        yield f"{name} control", encode({**fields, name: "a\x1bb"}), FORM
        yield f"{name} 1 MB", encode({**fields, name: "x" * ONE_MB}), FORM
        yield f"{name} number", encode({**fields, name: "-1" + "0" * 40}), FORM
        raw = encode(others) + f"&{name}=".encode()
        yield f"{name} invalid utf-8", raw + b"%ff%fe", FORM
        yield f"{name} encoded surrogate", raw + b"%ed%a0%80", FORM
    yield "10 MB", b"a=" + b"x" * TEN_MB, FORM
    yield "json", json.dumps(fields).encode(), "application/json"
    yield "deep json", b"[" * 5000 + b"]" * 5000, "application/json"
    yield "surrogate json", b'{"username": "\\ud800"}', "application/json"
    yield "text/plain", b"hello", "text/plain"
    yield "no content type", b"username=a", None


def _page_problems(resp: Any, label: str, fields: dict[str, str]) -> list[str]:
    status = resp.status_code
    if status >= 500:
        return [f"{label}: {status}"]
    if status in BLAMES_INPUT:
        text = resp.get_data(as_text=True)
        if not any(name in text for name in (*fields, "body", "username", "zz_extra")):
            return [f"{label}: {status} names no field: {text[:300]}"]
    return []


@pytest.mark.parametrize("page", ["/login/", "/signup/"])
def test_login_and_sign_up_forms_survive_the_battery(
    battery_app: Any, setting: Any, page: str
) -> None:
    tenant = setting["tenant"]
    fields = (
        {"username": tenant.username("alice"), "password": PASSWORD}
        if page == "/login/"
        else {
            "organisation": "Battery Org",
            "slug": f"battery-{uuid.uuid4().hex[:8]}",
            "admin_name": "Bat Tery",
            "email": f"battery-{uuid.uuid4().hex[:6]}@example.com",
            "password": "Correct-Horse-42-battery",
        }
    )
    problems: list[str] = []
    for label, body, ctype in _form_battery(fields):
        client = battery_app.test_client()
        resp = _send(client, "post", page, body, ctype, {})
        problems += _page_problems(resp, f"POST {page} [{label}]", fields)
    assert not problems, "\n".join(problems)


def test_login_api_survives_the_battery(battery_app: Any, setting: Any) -> None:
    tenant = setting["tenant"]
    good = {"username": tenant.username("alice"), "password": PASSWORD, "tenant": tenant.slug}
    client = battery_app.test_client()
    problems: list[str] = []
    for name in good:
        for value in PROPERTY_VALUES:
            others = json.dumps({k: v for k, v in good.items() if k != name})[:-1]
            body = f'{others}, "{name}": {value}}}'.encode()
            resp = _send(client, "post", "/api/v1/security/login", body, "application/json", {})
            problems += _problems(resp, f"login [{name}={value[:20]}]")
    assert not problems, "\n".join(problems)
