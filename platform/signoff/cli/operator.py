"""``signoff create-operator USERNAME EMAIL``: a platform operator (FAB's Admin role).

The password comes from ``SIGNOFF_OPERATOR_PASSWORD`` when set (for automation),
else from a hidden prompt asked twice. It is checked with the sign-up rules. The
command refuses to touch an existing user.
"""

from __future__ import annotations

import click
from flask import Flask

from signoff.config import setting


def create_operator_user(
    app: Flask, username: str, email: str, password: str, first_name: str, last_name: str
) -> int:
    """Create the FAB user with the Admin role; returns its id. Raises ClickException."""
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
        role = sm.find_role(app.config["AUTH_ROLE_ADMIN"])
        if role is None:
            raise click.ClickException(
                "FAB's Admin role is missing: run `signoff db upgrade` first"
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


@click.command("create-operator")
@click.argument("username")
@click.argument("email")
@click.option("--first-name", default="Platform", show_default=True)
@click.option("--last-name", default="Operator", show_default=True)
def create_operator_command(username: str, email: str, first_name: str, last_name: str) -> None:
    """Create a platform operator USERNAME with EMAIL (FAB Admin role).

    Password: SIGNOFF_OPERATOR_PASSWORD, else prompted.
    """
    from signoff.app import create_app

    password = setting("SIGNOFF_OPERATOR_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    app = create_app()
    user_id = create_operator_user(app, username, email, password, first_name, last_name)
    click.echo(
        f"operator {username} created (user id {user_id}); sign in at /login/, then /operator/"
    )
