"""Accounts made by manifests (test tenants), sign-up and operator creation use the
configured hashing method: the suite's cheap one here, FAB's scrypt in production."""

from __future__ import annotations

from tests.conftest import TEST_PASSWORD_HASH_METHOD
from tests.fixtures.tenants import PASSWORD, fresh_client


def _stored_hash(database, username: str) -> str:
    with database.connect("owner") as conn:
        row = conn.execute("SELECT password FROM ab_user WHERE username = %s", (username,))
        return str(row.fetchone()[0])


def test_manifest_accounts_use_the_configured_method_and_can_log_in(app, database, tenant_a):
    stored = _stored_hash(database, tenant_a.username("alice"))
    assert stored.startswith(TEST_PASSWORD_HASH_METHOD + "$")
    resp = fresh_client(app).post(
        "/api/v1/security/login",
        json={
            "username": tenant_a.username("alice"),
            "password": PASSWORD,
            "provider": "db",
            "tenant": tenant_a.slug,
        },
    )
    assert resp.status_code == 200
