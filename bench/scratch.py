"""A scratch database for a benchmark: both roles (``admin.init_roles``), the schema
(``admin.upgrade`` as the owner), dropped afterwards unless it is to be kept."""

from __future__ import annotations

import secrets
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import make_url
from sqlalchemy.engine import URL

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from signoff.db import admin


def libpq(url: Any) -> str:
    """A SQLAlchemy URL as a libpq DSN, for psycopg.connect."""
    return str(url.set(drivername="postgresql").render_as_string(hide_password=False))


@dataclass(frozen=True)
class Scratch:
    name: str
    owner: URL
    app: URL
    superuser: URL


@contextmanager
def scratch_database(admin_dsn: str, *, keep: bool = False) -> Iterator[Scratch]:
    base = make_url(admin_dsn).set(drivername="postgresql+psycopg")
    name = f"signoff_bench_{uuid.uuid4().hex[:8]}"
    owner_pw, app_pw = secrets.token_hex(16), secrets.token_hex(16)
    print(f"scratch database {name}")
    admin.init_roles(
        base.render_as_string(hide_password=False),
        database=name,
        owner_password=owner_pw,
        app_password=app_pw,
        create_database=True,
    )
    scratch = Scratch(
        name=name,
        owner=base.set(username=admin.OWNER_ROLE, password=owner_pw, database=name),
        app=base.set(username=admin.APP_ROLE, password=app_pw, database=name),
        superuser=base.set(database=name),
    )
    try:
        admin.upgrade(scratch.owner.render_as_string(hide_password=False))
        yield scratch
    finally:
        if keep:
            print(f"kept {name}")
        else:
            with psycopg.connect(libpq(base), autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
