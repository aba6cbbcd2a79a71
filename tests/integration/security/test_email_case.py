"""One account per e-mail address, whatever its case: lookups, the database, manifests,
sign-up and the migration that adds the index."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import make_url
from werkzeug.security import generate_password_hash

from signoff.db import admin
from tests.fixtures.tenants import PASSWORD
from tests.integration.views.conftest import fresh_client, text_of


def _add_user(app, username: str, email: str) -> int:
    from signoff.extensions import db

    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.user_model()
        user.username = username
        user.email = email
        user.first_name = "Case"
        user.last_name = "Test"
        user.active = True
        user.password = generate_password_hash(PASSWORD)
        db.session.add(user)
        db.session.commit()
        return int(user.id)


def test_find_user_matches_email_whatever_its_case(app):
    tag = uuid.uuid4().hex[:8]
    uid = _add_user(app, f"case-{tag}", f"Ada.{tag}@Case.example")
    with app.app_context():
        sm = app.appbuilder.sm
        for written in (f"ada.{tag}@case.example", f"ADA.{tag}@CASE.EXAMPLE"):
            found = sm.find_user(email=written)
            assert found is not None and found.id == uid
        assert sm.find_user(email=f"bob.{tag}@case.example") is None
        # Usernames keep FAB's own rule.
        assert sm.find_user(username=f"case-{tag}").id == uid


def test_database_refuses_a_second_account_differing_only_in_case(app, database):
    tag = uuid.uuid4().hex[:8]
    _add_user(app, f"first-{tag}", f"dup.{tag}@case.example")
    with database.connect("app") as conn, pytest.raises(psycopg.errors.UniqueViolation) as err:
        conn.execute(
            "INSERT INTO ab_user (id, first_name, last_name, username, email, active) "
            "VALUES (nextval('ab_user_id_seq'), 'x', 'y', %s, %s, true)",
            (f"second-{tag}", f"DUP.{tag}@Case.Example"),
        )
    assert "ab_user_email_lower_key" in str(err.value)


def test_manifest_refuses_an_email_that_belongs_to_another_account(app, database):
    from signoff.extensions import db
    from signoff.provisioning.manifest import ManifestError, apply_manifest

    tag = uuid.uuid4().hex[:8]
    _add_user(app, f"owner-{tag}", f"taken.{tag}@case.example")
    slug = f"t-{tag}"
    manifest = {
        "tenant": {"slug": slug, "name": "Case"},
        "members": [
            {
                "username": f"other-{tag}",
                "email": f"Taken.{tag}@CASE.example",
                "password": PASSWORD,
                "roles": ["Requester"],
            }
        ],
    }
    with app.app_context():
        with pytest.raises(ManifestError, match=r"members\[0\]\.email .* another account"):
            apply_manifest(app, db.session, manifest)
        db.session.rollback()
        assert app.appbuilder.sm.find_user(username=f"other-{tag}") is None
    with database.connect("admin") as conn:
        assert conn.execute("SELECT 1 FROM tenant WHERE slug = %s", (slug,)).fetchall() == []


def test_manifest_stores_the_normalised_address(app):
    from signoff.extensions import db
    from signoff.provisioning.manifest import ManifestError, apply_manifest

    tag = uuid.uuid4().hex[:8]
    member = {"username": f"mixed-{tag}", "password": PASSWORD, "roles": ["Requester"]}
    with app.app_context():
        with pytest.raises(ManifestError, match=r"members\[0\]\.email is not a valid"):
            apply_manifest(
                app,
                db.session,
                {
                    "tenant": {"slug": f"t-{tag}", "name": "Case"},
                    "members": [{**member, "email": "not an address"}],
                },
            )
        db.session.rollback()
        apply_manifest(
            app,
            db.session,
            {
                "tenant": {"slug": f"t-{tag}", "name": "Case"},
                "members": [{**member, "email": f"  Mixed.{tag}@Case.Example "}],
            },
        )
        user = app.appbuilder.sm.find_user(username=f"mixed-{tag}")
        assert user.email == f"mixed.{tag}@case.example"
        db.session.remove()


def test_sign_up_with_an_existing_address_in_another_case_asks_to_sign_in(app, database, tmp_path):
    """The address in another case is the existing account's: its owner is told by
    e-mail to sign in first, and nothing is created."""
    from signoff.devservers import start_embedded_smtp
    from signoff.provisioning.verification import drain
    from tests.integration.worker.conftest import Mailbox, body

    tag = uuid.uuid4().hex[:8]
    _add_user(app, f"signed-{tag}", f"signed.{tag}@case.example")
    slug = f"o-{tag}"
    smtp = start_embedded_smtp(tmp_path / "mail")
    app.config["SIGNOFF_SMTP_URL"] = smtp.url
    try:
        resp = fresh_client(app).post(
            "/signup/",
            data={
                "organisation": "Case Ltd",
                "slug": slug,
                "admin_name": "Signed Up",
                "email": f"SIGNED.{tag}@Case.Example",
                "password": "correct horse battery staple",
            },
        )
        drain()
    finally:
        app.config["SIGNOFF_SMTP_URL"] = None
        smtp.stop()
    assert resp.status_code == 200
    assert "Check your e-mail" in text_of(resp)
    (mail,) = Mailbox(smtp).messages()
    assert mail["To"] == f"signed.{tag}@case.example"
    assert "already has a Signoff account" in body(mail)
    with database.connect("admin") as conn:
        assert conn.execute("SELECT 1 FROM tenant WHERE slug = %s", (slug,)).fetchall() == []


def test_migration_lists_clashing_addresses_instead_of_failing_obscurely(scratch_db):
    owner = scratch_db.set(username=admin.OWNER_ROLE, password=None)
    url = owner.render_as_string(hide_password=False)
    admin.upgrade(url, "0008")
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        for username, email in (("one", "Same@x.example"), ("two", "same@X.example")):
            conn.execute(
                "INSERT INTO ab_user (first_name, last_name, username, email, active) "
                "VALUES ('a', 'b', %s, %s, true)",
                (username, email),
            )
    with pytest.raises(RuntimeError, match=r"same@x\.example \(2 accounts\)"):
        admin.upgrade(url, "0009")
    assert admin.current_revision(url) == "0008"
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE ab_user SET email = 'other@x.example' WHERE username = 'two'")
    admin.upgrade(url, "0009")
    assert admin.current_revision(url) == "0009"
