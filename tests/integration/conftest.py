"""Fixtures shared by the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import URL, make_url

from signoff.db import admin


@pytest.fixture
def scratch_db(servers) -> Iterator[URL]:
    """An empty database with both roles; dropped afterwards."""
    base = make_url(servers.admin_url).set(drivername="postgresql+psycopg")
    name = f"signoff_scratch_{uuid.uuid4().hex[:8]}"
    admin.init_roles(
        base.render_as_string(hide_password=False), database=name, create_database=True
    )
    url = base.set(database=name)
    yield url
    with psycopg.connect(
        base.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    ) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE "{name}"')
