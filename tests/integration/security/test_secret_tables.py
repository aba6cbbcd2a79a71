"""Issue 12 item 11: the user-global secret tables, attacked as the app role in SQL.

The attacker holds a ``signoff_app`` connection bound as one tenant and one user
(what a statement injected into that user's request would have) and tries to read and
change another person's (another tenant's member's) TOTP secret, recovery codes,
step-up verifications and password hash. Both people enrolled through the API, so the
rows are the ones the product writes.
"""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import errors

from tests.integration.security.conftest import PASSWORD, Person

SECRET_TABLES = ("mfa_totp", "mfa_recovery_code", "mfa_token_verification")


def bind(conn: Any, tenant: Any, user_id: int | None) -> None:
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
    conn.execute(
        "SELECT set_config('app.secret_owner', %s, true)",
        ("" if user_id is None else str(user_id),),
    )


@pytest.fixture
def people(expense_tenant: Any, tenant_factory: Any, person: Any) -> tuple[Person, Person]:
    """(attacker, victim): members of two tenants, both enrolled (each has an
    authenticator, ten recovery codes and a verification of their access token)."""
    attacker = person(expense_tenant, "finance")
    victim = person(tenant_factory(), "finance")
    attacker.enroll()
    victim.enroll()
    return attacker, victim


def test_bound_as_one_user_the_app_role_reads_no_other_users_mfa_secrets(database, people):
    attacker, victim = people
    me, them = attacker.user_id, victim.user_id
    with database.connect("app") as conn:
        bind(conn, attacker.tenant, me)
        for table in SECRET_TABLES:
            # Its own rows: the binding works (so the refusals below are the policy's).
            owners = {r[0] for r in conn.execute(f"SELECT user_id FROM {table}")}
            assert owners == {me}, table
            assert conn.execute(
                f"SELECT count(*) FROM {table} WHERE user_id = %s", (them,)
            ).fetchone() == (0,), table
            assert (
                conn.execute(
                    f"UPDATE {table} SET user_id = user_id WHERE user_id = %s", (them,)
                ).rowcount
                == 0
            ), table
            assert conn.execute(f"DELETE FROM {table} WHERE user_id = %s", (them,)).rowcount == 0, (
                table
            )
        # The secrets themselves, by every shape of read.
        assert (
            conn.execute(
                "SELECT secret_encrypted FROM mfa_totp WHERE user_id = %s", (them,)
            ).fetchall()
            == []
        )
        assert (
            conn.execute(
                "SELECT code_hash FROM mfa_recovery_code WHERE user_id = %s", (them,)
            ).fetchall()
            == []
        )
        assert (
            conn.execute(
                "SELECT jti FROM mfa_token_verification WHERE user_id = %s", (them,)
            ).fetchall()
            == []
        )
        # Planting an authenticator or a verification for the victim is refused...
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO mfa_token_verification (user_id, jti, verified_at, expires_at) "
                "VALUES (%s, 'planted', now(), now() + interval '1 hour')",
                (them,),
            )
        conn.rollback()
        # ...and so is handing one's own row over to the victim.
        bind(conn, attacker.tenant, me)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("UPDATE mfa_totp SET user_id = %s WHERE user_id = %s", (them, me))
        conn.rollback()
        # Nobody bound: nothing at all, not even one's own.
        bind(conn, attacker.tenant, None)
        for table in SECRET_TABLES:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        conn.rollback()
        # A fresh transaction starts unbound whatever the previous one set.
        with conn.transaction():
            bind(conn, attacker.tenant, me)
        assert conn.execute("SELECT count(*) FROM mfa_totp").fetchone() == (0,)
        conn.rollback()
        # The clean-up function deletes expired verifications only, never live ones,
        # whatever date it is given.
        assert conn.execute(
            "SELECT signoff.mfa_verification_purge(now() + interval '10 years')"
        ).fetchone() == (0,)
        conn.commit()
    with database.connect("admin") as conn:
        for table in SECRET_TABLES:
            assert (
                conn.execute(
                    f"SELECT count(*) FROM {table} WHERE user_id = %s", (them,)
                ).fetchone()[0]
                > 0
            ), table
        assert conn.execute(
            "SELECT count(*) FROM mfa_token_verification WHERE user_id = %s AND jti = 'planted'",
            (them,),
        ).fetchone() == (0,)


def test_the_app_role_cannot_read_password_hashes(database, people):
    attacker, victim = people
    them = victim.user_id
    with database.connect("app") as conn:
        bind(conn, attacker.tenant, attacker.user_id)
        for statement in (
            "SELECT password FROM ab_user WHERE id = %(u)s",
            "SELECT * FROM ab_user WHERE id = %(u)s",
            "SELECT u FROM ab_user AS u WHERE id = %(u)s",
            "SELECT count(*) FROM (SELECT * FROM ab_user) AS s",
            "SELECT id FROM ab_user WHERE password LIKE 'scrypt%%' AND id = %(u)s",
            "UPDATE ab_user SET first_name = first_name WHERE id = %(u)s RETURNING password",
            "COPY ab_user TO STDOUT",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement, {"u": them})
            conn.rollback()
        # What the flows need stays readable.
        bind(conn, attacker.tenant, attacker.user_id)
        assert conn.execute(
            "SELECT username, email, active FROM ab_user WHERE id = %s", (them,)
        ).fetchone() == (
            victim.tenant.username("finance"),
            f"finance@{victim.tenant.slug}.example",
            True,
        )
        conn.rollback()

        # The one way to a hash: one per transaction, which nothing the caller can
        # run undoes (advisory locks of a transaction are released only at its end).
        first = conn.execute("SELECT signoff.login_password_hash(%s)", (them,)).fetchone()[0]
        assert first and first.startswith(("scrypt:", "pbkdf2:"))
        conn.execute("SELECT pg_advisory_unlock_all()")
        conn.execute("SELECT set_config('signoff.login_hash_used', '', true)")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT signoff.login_password_hash(%s)", (attacker.user_id,))
        conn.rollback()
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "SELECT signoff.login_password_hash(id) FROM (VALUES (%s), (%s)) AS v(id)",
                (them, attacker.user_id),
            )
        conn.rollback()


def test_logins_still_work(app, people):
    """Signing in by the API and by the web form reads the hash through
    signoff.login_password_hash: the right password works, a wrong one is refused.
    (The change-password page: tests/integration/views/test_email_verification.py.)"""
    from tests.fixtures.tenants import api_token, fresh_client

    attacker, victim = people
    client = fresh_client(app)
    assert api_token(client, victim.tenant.username("finance"), victim.tenant.slug)
    resp = client.post(
        "/api/v1/security/login",
        json={
            "username": victim.tenant.username("finance"),
            "password": PASSWORD + "x",
            "provider": "db",
            "tenant": victim.tenant.slug,
        },
    )
    assert resp.status_code == 401
    web = fresh_client(app)
    refused = web.post(
        "/login/", data={"username": attacker.tenant.username("alice"), "password": "wrong"}
    )
    assert refused.status_code == 302 and "/login/" in refused.headers["Location"]
    resp = web.post(
        "/login/", data={"username": attacker.tenant.username("alice"), "password": PASSWORD}
    )
    assert resp.status_code == 302 and "/login/" not in resp.headers["Location"]
    with web.session_transaction() as cookie:
        assert cookie.get("_user_id") == str(attacker.tenant.user("alice"))


def test_cleanup_purges_every_users_expired_verifications_only(app, database, people):
    """The clean-up job runs as the app role, which sees no one's verifications: it
    deletes the expired ones of every user through signoff.mfa_verification_purge."""
    from signoff.extensions import db
    from signoff.jobs import cleanup

    attacker, victim = people
    users = (attacker.user_id, victim.user_id)
    with database.connect("admin") as conn:
        for user_id in users:
            conn.execute(
                "INSERT INTO mfa_token_verification (user_id, jti, verified_at, expires_at) "
                "VALUES (%s, 'expired', now() - interval '2 hours', now() - interval '1 hour')",
                (user_id,),
            )
        live_before = conn.execute(
            "SELECT count(*) FROM mfa_token_verification WHERE expires_at > now()"
        ).fetchone()[0]
    assert live_before >= 2  # both enrolments verified their access tokens
    with app.app_context():
        report = cleanup(db.session, app.config)
        db.session.rollback()
    assert report.token_verifications >= 2
    with database.connect("admin") as conn:
        assert conn.execute(
            "SELECT count(*) FROM mfa_token_verification "
            "WHERE jti = 'expired' AND user_id = ANY(%s)",
            (list(users),),
        ).fetchone() == (0,)
        assert (
            conn.execute(
                "SELECT count(*) FROM mfa_token_verification WHERE expires_at > now()"
            ).fetchone()[0]
            >= live_before
        )
