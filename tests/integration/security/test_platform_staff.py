"""Platform staff, attacked over HTTP: an Operator reaches the operator console only,
FAB's user/role/permission pages and APIs are closed to every account, the break-glass
administrator exists only through the CLI and its use is logged.

Issue 12 item 1: an operator (then a FAB Admin) listed every tenant's users, reset a
tenant admin's password and signed in as them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from signoff.cli.operator import create_operator_user, create_platform_admin_user
from signoff.security.manager import SignoffSecurityManager
from tests.fixtures.tenants import PASSWORD, auth, fresh_client, web_login
from tests.integration.views.conftest import link, mail_app_for, mails_to
from tests.integration.worker.conftest import Mailbox

STAFF_PASSWORD = "Platform-staff-passphrase-7"


def staff_token(app: Any, client: Any, username: str) -> str:
    """A token with no tenant claim for ``username``, as the API login issued before it
    required ``tenant`` (it now answers 400): such tokens must still reach nothing."""
    from flask_jwt_extended import create_access_token

    from signoff.security import sessions
    from signoff.security.api import session_claims

    body = {"username": username, "password": STAFF_PASSWORD, "provider": "db"}
    refused = client.post("/api/v1/security/login", json=body)
    assert refused.status_code == 400 and refused.get_json()["field"] == "tenant"
    with app.test_request_context():
        user = app.appbuilder.sm.find_user(username=username)
        sid = sessions.open_session(int(user.id), kind=sessions.API)
        return str(
            create_access_token(
                identity=str(user.id), fresh=True, additional_claims=session_claims(None, sid)
            )
        )


def _new(app: Any, make: Any) -> str:
    name = f"staff-{uuid.uuid4().hex[:8]}"
    make(app, name, f"{name}@ops.example", STAFF_PASSWORD, "Pat", "Staff")
    return name


@pytest.fixture(scope="module")
def operator(app: Any) -> str:
    return _new(app, create_operator_user)


@pytest.fixture(scope="module")
def breakglass(app: Any) -> str:
    return _new(app, create_platform_admin_user)


def _client(app: Any, username: str, password: str = STAFF_PASSWORD) -> Any:
    client = fresh_client(app)
    web_login(client, username, password)
    return client


def _fab_pages(user_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every FAB security page, by method, with a form for the writes."""
    new_password = {"password": "Taken-over-0451!", "conf_password": "Taken-over-0451!"}
    return [
        ("get", "/users/list/", None),
        ("get", f"/users/show/{user_id}", None),
        ("get", f"/users/edit/{user_id}", None),
        ("post", f"/users/edit/{user_id}", {"email": "attacker@evil.example"}),
        ("get", "/users/add", None),
        ("post", "/users/add", {"username": "planted", "email": "p@evil.example"}),
        ("get", f"/users/delete/{user_id}", None),
        ("post", f"/users/delete/{user_id}", {}),
        ("get", "/users/userinfo/", None),
        ("get", "/roles/list/", None),
        ("get", "/roles/add", None),
        ("post", "/roles/add", {"name": "Planted"}),
        ("get", "/roles/show/1", None),
        ("get", "/groups/list/", None),
        ("get", "/permissions/list/", None),
        ("get", "/viewmenus/list/", None),
        ("get", "/permissionviews/list/", None),
        ("get", f"/resetpassword/form?pk={user_id}", None),
        ("post", f"/resetpassword/form?pk={user_id}", new_password),
        ("get", "/resetmypassword/form", None),
        ("post", "/resetmypassword/form", new_password),
        ("get", "/userinfoeditview/form", None),
        ("get", "/userstatschartview/chart/", None),
    ]


#: FAB's "my profile" pages: a GET leads to Signoff's own profile page (issue 14: the
#: user menu's "Profile" answered 403); every write stays closed.
PROFILE_GETS = {"/users/userinfo/", "/resetmypassword/form", "/userinfoeditview/form"}


def _assert_closed(client: Any, user_id: int, victim_email: str) -> None:
    for method, path, form in _fab_pages(user_id):
        resp = getattr(client, method)(path, data=form) if form else getattr(client, method)(path)
        if method == "get" and path in PROFILE_GETS:
            assert resp.status_code == 302, (method, path, resp.status_code)
            assert resp.headers["Location"].endswith("/account/profile"), path
            continue
        assert resp.status_code == 403, (method, path, resp.status_code)
        assert victim_email not in resp.get_data(as_text=True), path


def test_operator_gets_403_on_every_fab_security_page(app, operator, tenant_a, database):
    admin_id = int(tenant_a.user("admin"))
    with database.connect("admin") as conn:
        email = conn.execute("SELECT email FROM ab_user WHERE id = %s", (admin_id,)).fetchone()[0]
    _assert_closed(_client(app, operator), admin_id, email)


def test_tenant_admin_and_break_glass_get_403_too(app, breakglass, tenant_a, database):
    admin_id = int(tenant_a.user("bob"))
    with database.connect("admin") as conn:
        email = conn.execute("SELECT email FROM ab_user WHERE id = %s", (admin_id,)).fetchone()[0]
    _assert_closed(_client(app, tenant_a.username("admin"), PASSWORD), admin_id, email)
    # The break-glass administrator holds every FAB permission, and still: ab_user
    # holds every tenant's people, so these pages are closed for every account.
    _assert_closed(_client(app, breakglass), admin_id, email)
    # Anonymous visitors too (FAB would have redirected them to the login form).
    _assert_closed(fresh_client(app), admin_id, email)


def test_operator_cannot_take_over_a_tenant_admin(
    app, operator, breakglass, tenant_factory, database
):
    """The incident: reset the tenant admin's password, sign in, open the tenant admin."""
    t = tenant_factory({"admin": ["Admin"]}, managers={})
    victim = int(t.user("admin"))
    with database.connect("admin") as conn:
        before = conn.execute("SELECT password FROM ab_user WHERE id = %s", (victim,)).fetchone()
    client = _client(app, operator)
    taken = "Taken-over-0451!"
    resp = client.post(
        f"/resetpassword/form?pk={victim}", data={"password": taken, "conf_password": taken}
    )
    assert resp.status_code == 403
    with database.connect("admin") as conn:
        after = conn.execute("SELECT password FROM ab_user WHERE id = %s", (victim,)).fetchone()
    assert after == before
    attacker = fresh_client(app)
    attacker.post("/login/", data={"username": t.username("admin"), "password": taken})
    assert attacker.get(f"/t/{t.slug}/admin/").status_code in (302, 404)
    # Neither the operator's own session nor the break-glass administrator's opens the
    # tenant's pages or its admin (platform staff have no membership).
    glass = _client(app, breakglass)
    for staff in (client, glass):
        assert staff.get(f"/t/{t.slug}/").status_code == 404
        assert staff.get(f"/t/{t.slug}/admin/").status_code == 404
        assert staff.get(f"/t/{t.slug}/admin/members/").status_code == 404
    # The break-glass administrator cannot reset the password either.
    resp = glass.post(
        f"/resetpassword/form?pk={victim}", data={"password": taken, "conf_password": taken}
    )
    assert resp.status_code == 403
    with database.connect("admin") as conn:
        still = conn.execute("SELECT password FROM ab_user WHERE id = %s", (victim,)).fetchone()
    assert still == before
    # The owner still signs in with the old password.
    _client(app, t.username("admin"), PASSWORD)


def test_operator_reaches_the_console_and_nothing_else_through_the_api(app, operator, tenant_a):
    client = _client(app, operator)
    assert client.get("/operator/").status_code == 200
    assert client.get("/operator/tenants/").status_code == 200
    api = fresh_client(app)
    token = staff_token(app, api, operator)
    # The FAB security REST API is not mounted (FAB_ADD_SECURITY_API is off) ...
    for path in ("/api/v1/security/users/", "/api/v1/security/roles/"):
        assert api.get(path, headers=auth(token)).status_code in (403, 404), path
    # ... and a token without a tenant reaches no tenant API.
    for path in ("/api/v1/members/", "/api/v1/requests/", "/api/v1/support-access/"):
        assert api.get(path, headers=auth(token)).status_code in (401, 403, 404), path
    # No membership: a token for a tenant is refused like a wrong password.
    resp = api.post(
        "/api/v1/security/login",
        json={
            "username": operator,
            "password": STAFF_PASSWORD,
            "provider": "db",
            "tenant": tenant_a.slug,
        },
    )
    assert resp.status_code == 401


class MountedSecurityManager(SignoffSecurityManager):
    """Mounts FAB's user and role REST APIs (``FAB_ADD_SECURITY_API=True`` cannot build
    all of FAB 5.3's security APIs with this marshmallow-sqlalchemy), as a deployment
    that turned them on would."""

    def register_views(self) -> None:
        super().register_views()
        self.appbuilder.add_api(self.user_api)
        self.appbuilder.add_api(self.role_api)


def test_fab_security_api_is_closed_even_when_mounted(
    database, redis_url, redis_prefix, app, tenant_a
):
    from signoff.app import create_app
    from tests.conftest import app_config

    mounted = create_app(
        app_config(
            database,
            redis_url,
            redis_prefix,
            FAB_SECURITY_MANAGER_CLASS=f"{__name__}.MountedSecurityManager",
        )
    )
    assert {"/api/v1/security/users/", "/api/v1/security/roles/"} <= {
        r.rule for r in mounted.url_map.iter_rules()
    }
    operator = _new(mounted, create_operator_user)
    breakglass = _new(mounted, create_platform_admin_user)
    victim = int(tenant_a.user("admin"))
    for who in (operator, breakglass):
        client = fresh_client(mounted)
        headers = auth(staff_token(mounted, client, who))
        for method, path, body in (
            ("get", "/api/v1/security/users/", None),
            ("get", f"/api/v1/security/users/{victim}", None),
            ("put", f"/api/v1/security/users/{victim}", {"password": "Taken-over-0451!"}),
            ("post", "/api/v1/security/users/", {"username": "planted", "roles": [1]}),
            ("get", "/api/v1/security/roles/", None),
            ("post", "/api/v1/security/roles/", {"name": "Planted"}),
        ):
            kwargs: dict[str, Any] = {"headers": headers}
            if body is not None:
                kwargs["json"] = body
            resp = getattr(client, method)(path, **kwargs)
            assert resp.status_code == 403, (who, method, path, resp.status_code)
            assert resp.get_json()["code"] == "forbidden"
    with database.connect("admin") as conn:
        assert conn.execute(
            "SELECT count(*) FROM ab_user WHERE username = 'planted'"
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM ab_role WHERE name = 'Planted'").fetchone() == (
            0,
        )


def _fab_roles(database: Any, username: str) -> list[str]:
    with database.connect("admin") as conn:
        return sorted(
            r[0]
            for r in conn.execute(
                "SELECT r.name FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id "
                "JOIN ab_role r ON r.id = ur.role_id WHERE u.username = %s",
                (username,),
            )
        )


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailbox]:
    from signoff.devservers import start_embedded_smtp

    smtp = start_embedded_smtp(tmp_path_factory.mktemp("staff-mail"))
    yield Mailbox(smtp)
    smtp.stop()


def test_no_web_path_creates_a_platform_administrator(
    app, database, redis_url, redis_prefix, mailbox, operator, breakglass
):
    admins_before = _fab_count(database, "Admin")
    for client in (fresh_client(app), _client(app, operator), _client(app, breakglass)):
        name = f"planted-{uuid.uuid4().hex[:6]}"
        form = {
            "first_name": "P",
            "last_name": "P",
            "username": name,
            "email": f"{name}@evil.example",
            "roles": "1",
            "password": "Planted-0451-pass",
            "conf_password": "Planted-0451-pass",
        }
        assert client.post("/users/add", data=form).status_code == 403
        assert client.post("/registeruser/add", data=form).status_code in (403, 404)
        assert client.post("/register/form", data=form).status_code in (403, 404)
    # Self-service sign-up makes a tenant admin: a tenant role, never a platform one.
    slug = f"signup-{uuid.uuid4().hex[:6]}"
    mail_app = mail_app_for(database, redis_url, redis_prefix, mailbox.url)
    signer = fresh_client(mail_app)
    signup = signer.post(
        "/signup/",
        data={
            "organisation": f"Org {slug}",
            "slug": slug,
            "admin_name": "Eve Mallory",
            "email": f"eve@{slug}.example",
            "password": "Signup-passphrase-0451",
            "accept": "on",
        },
    )
    assert signup.status_code == 200, signup.get_data(as_text=True)
    (mail,) = mails_to(mailbox, f"eve@{slug}.example")
    verified = signer.post(link(mail, "/account/verify/"))
    assert verified.status_code == 302, verified.get_data(as_text=True)
    assert _fab_roles(database, f"eve@{slug}.example") == ["Member"]
    assert _fab_count(database, "Admin") == admins_before


def _fab_count(database: Any, role: str) -> int:
    with database.connect("admin") as conn:
        return int(
            conn.execute(
                "SELECT count(*) FROM ab_user_role ur JOIN ab_role r ON r.id = ur.role_id "
                "WHERE r.name = %s",
                (role,),
            ).fetchone()[0]
        )


def test_operator_role_holds_only_the_console(app, database):
    from signoff.security.sync import sync_permissions

    def permissions() -> set[tuple[str, str]]:
        with database.connect("admin") as conn:
            return {
                (p, v)
                for p, v in conn.execute(
                    "SELECT p.name, v.name FROM ab_role r "
                    "JOIN ab_permission_view_role pvr ON pvr.role_id = r.id "
                    "JOIN ab_permission_view pv ON pv.id = pvr.permission_view_id "
                    "JOIN ab_permission p ON p.id = pv.permission_id "
                    "JOIN ab_view_menu v ON v.id = pv.view_menu_id WHERE r.name = 'Operator'"
                )
            }

    # What `signoff db upgrade` leaves. (The add-on tests share this database and give
    # their host app's views to every FAB role there is, which a real Signoff database
    # never has; the sync below is what upgrade runs.)
    owner = _owner_app(app, database)
    sync_permissions(owner)
    assert permissions() == {("can_read", "Operator"), ("can_write", "Operator")}
    # A permission added by hand (or left by an older version) is taken away again.
    with database.connect("admin") as conn:
        conn.execute(
            "INSERT INTO ab_permission_view_role (permission_view_id, role_id) "
            "SELECT pv.id, r.id FROM ab_permission_view pv "
            "JOIN ab_permission p ON p.id = pv.permission_id "
            "JOIN ab_view_menu v ON v.id = pv.view_menu_id, ab_role r "
            "WHERE p.name = 'can_list' AND v.name = 'UserDBModelView' AND r.name = 'Operator'"
        )
        conn.commit()
    assert ("can_list", "UserDBModelView") in permissions()
    sync_permissions(owner)
    assert permissions() == {("can_read", "Operator"), ("can_write", "Operator")}


def _owner_app(app: Any, database: Any) -> Any:
    from signoff.app import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database.owner_url.render_as_string(hide_password=False),
            "SECRET_KEY": "migration",
        }
    )


def test_break_glass_sign_in_and_requests_are_logged(app, breakglass, caplog):
    caplog.set_level(logging.WARNING, logger="signoff.platform")
    client = _client(app, breakglass)
    assert client.get("/operator/").status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "signoff.platform"]
    assert any(line.startswith(f"break-glass sign-in: user={breakglass}") for line in lines)
    assert any(
        f"break-glass request: user={breakglass}" in line and "GET /operator/ -> 200" in line
        for line in lines
    ), lines
    # An operator's requests are not break-glass use.
    caplog.clear()
    name = _new(app, create_operator_user)
    assert _client(app, name).get("/operator/").status_code == 200
    assert not [r for r in caplog.records if "break-glass" in r.getMessage()]


def test_platform_account_commands(app, database, monkeypatch):
    from signoff.cli import cli

    monkeypatch.setattr("signoff.app.create_app", lambda *a, **k: app)
    runner = CliRunner()
    name = f"bg-{uuid.uuid4().hex[:6]}"
    weak = runner.invoke(
        cli,
        ["create-platform-admin", name, f"{name}@ops.example"],
        env={"SIGNOFF_PLATFORM_ADMIN_PASSWORD": "weak"},
    )
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output
    made = runner.invoke(
        cli,
        ["create-platform-admin", name, f"{name}@ops.example"],
        env={"SIGNOFF_PLATFORM_ADMIN_PASSWORD": STAFF_PASSWORD},
    )
    assert made.exit_code == 0, made.output
    assert _fab_roles(database, name) == ["Admin"]
    listed = runner.invoke(cli, ["platform-users"])
    assert listed.exit_code == 0 and f"Admin\t{name}\t" in listed.output
    demoted = runner.invoke(cli, ["demote-platform-admin", name])
    assert demoted.exit_code == 0, demoted.output
    assert _fab_roles(database, name) == ["Operator"]
    again = runner.invoke(cli, ["demote-platform-admin", name])
    assert again.exit_code != 0 and "does not hold" in again.output
    assert runner.invoke(cli, ["demote-platform-admin", "nobody-here"]).exit_code != 0
    assert f"Operator\t{name}\t" in runner.invoke(cli, ["platform-users"]).output
    # A demoted operator keeps the console.
    assert _client(app, name).get("/operator/").status_code == 200
