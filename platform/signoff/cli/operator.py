"""Platform accounts, from the command line only (never from a web page or an API).

- ``signoff create-operator USERNAME EMAIL``: a platform operator, FAB role
  ``Operator``: the operator console and nothing else.
- ``signoff create-platform-admin USERNAME EMAIL``: the break-glass platform
  administrator, FAB role ``Admin`` (every platform permission). Its sign-ins and
  every request it makes are logged at WARNING (:mod:`signoff.security.platform`).
- ``signoff demote-platform-admin USERNAME``: ``Admin`` -> ``Operator`` (operators
  made by versions before the Operator role were FAB Admins).
- ``signoff platform-users``: who holds ``Admin`` or ``Operator``.

Passwords come from ``SIGNOFF_OPERATOR_PASSWORD`` / ``SIGNOFF_PLATFORM_ADMIN_PASSWORD``
when set (for automation), else from a hidden prompt asked twice, and are checked
with the sign-up rules. The create commands refuse to touch an existing user.
"""

from __future__ import annotations

import logging

import click
from flask import Flask

from signoff.config import setting
from signoff.roles import OPERATOR_ROLE

log = logging.getLogger(__name__)


def _create_platform_user(
    app: Flask,
    role_name: str,
    username: str,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
) -> int:
    from signoff.extensions import current_appbuilder, db
    from signoff.security.passwords import hash_password
    from signoff.tenancy.accounts import normalize_email, password_problems

    clean_email, problem = normalize_email(email)
    if problem or clean_email is None:
        raise click.ClickException(f"EMAIL {problem}")
    if problems := password_problems(password, email=clean_email):
        raise click.ClickException("password " + "; ".join(problems))
    with app.app_context():
        sm = current_appbuilder(app).sm
        if sm.find_user(username=username) or sm.find_user(email=clean_email):
            raise click.ClickException(f"a user {username!r} or {clean_email!r} exists already")
        role = sm.find_role(role_name)
        if role is None:
            raise click.ClickException(
                f"the FAB role {role_name!r} is missing: run `signoff db upgrade` first"
            )
        user = sm.user_model()
        user.username = username
        user.email = clean_email
        user.first_name = first_name
        user.last_name = last_name
        user.active = True
        user.roles = [role]
        user.password = hash_password(password)
        db.session.add(user)
        db.session.commit()
        return int(user.id)


def create_operator_user(
    app: Flask, username: str, email: str, password: str, first_name: str, last_name: str
) -> int:
    """Create a FAB user with the ``Operator`` role; returns its id. Raises ClickException."""
    return _create_platform_user(
        app, OPERATOR_ROLE, username, email, password, first_name, last_name
    )


def create_platform_admin_user(
    app: Flask, username: str, email: str, password: str, first_name: str, last_name: str
) -> int:
    """Create the break-glass administrator (FAB ``Admin``); returns its id."""
    user_id = _create_platform_user(
        app, app.config["AUTH_ROLE_ADMIN"], username, email, password, first_name, last_name
    )
    log.warning("break-glass platform administrator %s created (user id %s)", username, user_id)
    return user_id


def demote_platform_admin(app: Flask, username: str) -> None:
    """Replace the user's FAB ``Admin`` role with ``Operator``. Raises ClickException."""
    from signoff.extensions import current_appbuilder, db

    with app.app_context():
        sm = current_appbuilder(app).sm
        user = sm.find_user(username=username)
        admin = sm.find_role(app.config["AUTH_ROLE_ADMIN"])
        operator = sm.find_role(OPERATOR_ROLE)
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        if operator is None or admin is None:
            raise click.ClickException("run `signoff db upgrade` first")
        if admin not in user.roles:
            raise click.ClickException(f"{username!r} does not hold the {admin.name} role")
        user.roles = [r for r in user.roles if r.id != admin.id] + (
            [] if operator in user.roles else [operator]
        )
        db.session.commit()
        log.warning("platform user %s demoted from %s to %s", username, admin.name, OPERATOR_ROLE)


def _password(variable: str) -> str:
    return setting(variable) or click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.command("create-operator")
@click.argument("username")
@click.argument("email")
@click.option("--first-name", default="Platform", show_default=True)
@click.option("--last-name", default="Operator", show_default=True)
def create_operator_command(username: str, email: str, first_name: str, last_name: str) -> None:
    """Create a platform operator USERNAME with EMAIL (FAB role Operator: console only).

    Password: SIGNOFF_OPERATOR_PASSWORD, else prompted.
    """
    from signoff.cli.local import cli_app

    password = _password("SIGNOFF_OPERATOR_PASSWORD")
    app = cli_app()
    user_id = create_operator_user(app, username, email, password, first_name, last_name)
    click.echo(
        f"operator {username} created (user id {user_id}); sign in at /login/, then /operator/"
    )


@click.command("create-platform-admin")
@click.argument("username")
@click.argument("email")
@click.option("--first-name", default="Platform", show_default=True)
@click.option("--last-name", default="Administrator", show_default=True)
def create_platform_admin_command(
    username: str, email: str, first_name: str, last_name: str
) -> None:
    """Create the break-glass platform administrator USERNAME (FAB role Admin).

    Every platform permission; sign-ins and requests are logged. No web page or
    API can create one. Password: SIGNOFF_PLATFORM_ADMIN_PASSWORD, else prompted.
    """
    from signoff.cli.local import cli_app

    password = _password("SIGNOFF_PLATFORM_ADMIN_PASSWORD")
    app = cli_app()
    user_id = create_platform_admin_user(app, username, email, password, first_name, last_name)
    click.echo(f"break-glass platform administrator {username} created (user id {user_id})")


@click.command("demote-platform-admin")
@click.argument("username")
def demote_platform_admin_command(username: str) -> None:
    """Make the FAB Admin USERNAME an Operator (console only)."""
    from signoff.cli.local import cli_app

    demote_platform_admin(cli_app(), username)
    click.echo(f"{username} is now an {OPERATOR_ROLE}")


@click.command("platform-users")
def platform_users_command() -> None:
    """List the users holding FAB's Admin (break-glass) or Operator role."""
    from signoff.cli.local import cli_app
    from signoff.extensions import current_appbuilder

    app = cli_app()
    with app.app_context():
        sm = current_appbuilder(app).sm
        for name in (app.config["AUTH_ROLE_ADMIN"], OPERATOR_ROLE):
            role = sm.find_role(name)
            for user in sorted(role.user if role else [], key=lambda u: u.username):
                state = "active" if user.active else "inactive"
                click.echo(f"{name}\t{user.username}\t{user.email}\t{state}")
