"""Audit fixtures: tenants with chains, driven over psycopg as the app role.

``Chain`` appends and verifies as ``signoff_app`` (RLS applies) and tampers as
the superuser with ``session_replication_role = replica``, which is what it
takes to get past the append-only triggers.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEY = b"test-audit-key"


def bind(conn: psycopg.Connection[Any], tenant: uuid.UUID | str | None) -> None:
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant or ""),))


def quote_nullable(value: str | None) -> str:
    """PostgreSQL's quote_nullable(text), independently written."""
    if value is None:
        return "NULL"
    body = value.replace("'", "''")
    if "\\" in value:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return "'" + body + "'"


def canonical(row: dict[str, Any]) -> bytes:
    """The documented canonical bytes, computed in Python (the SQL must agree)."""
    micros = (row["occurred_at"] - EPOCH) // timedelta(microseconds=1)
    fields = [
        str(row["tenant_id"]),
        str(row["seq"]),
        str(micros),
        "~" if row["actor_id"] is None else str(row["actor_id"]),
        "~" if row["on_behalf_of_id"] is None else str(row["on_behalf_of_id"]),
        quote_nullable(row["action"]),
        quote_nullable(row["object_type"]),
        quote_nullable(row["object_id"]),
        row["payload_text"],
    ]
    return "\x1f".join(fields).encode("utf-8")


def genesis(tenant_id: uuid.UUID) -> bytes:
    return hashlib.sha256(f"signoff-audit-genesis:{tenant_id}".encode()).digest()


@dataclass
class Chain:
    database: Any
    id: uuid.UUID
    slug: str

    @contextmanager
    def app(self, *, bound: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """An app-role connection, in a transaction bound to this tenant."""
        with self.database.connect("app") as conn:
            if bound:
                bind(conn, self.id)
            yield conn

    def append(
        self,
        n: int = 1,
        *,
        actor: int | None = 1,
        on_behalf_of: int | None = None,
        action: str = "request.approved",
        object_type: str = "approval_request",
        object_id: str | None = "r-1",
        payload: dict[str, Any] | None = None,
    ) -> list[int]:
        seqs = []
        with self.app() as conn:
            for i in range(n):
                body = payload if payload is not None else {"comment": f"event {i}", "n": i}
                seqs.append(
                    conn.execute(
                        "SELECT signoff.audit_append(%s, %s, %s, %s, %s, %s::jsonb)",
                        (actor, on_behalf_of, action, object_type, object_id, json.dumps(body)),
                    ).fetchone()[0]
                )
        return seqs

    def verify(self, from_seq: int = 1, to_seq: int | None = None) -> dict[str, Any]:
        with self.app() as conn:
            cur = conn.execute(
                "SELECT * FROM signoff.audit_verify(%s, %s, %s)", (self.id, from_seq, to_seq)
            )
            names = [c.name for c in cur.description or ()]
            return dict(zip(names, cur.fetchone() or (), strict=True))

    def rows(self) -> list[dict[str, Any]]:
        with self.app() as conn:
            cur = conn.execute(
                "SELECT tenant_id, seq, occurred_at, actor_id, on_behalf_of_id, action, "
                "object_type, object_id, payload::text AS payload_text, prev_hash, row_hash "
                "FROM audit_event ORDER BY seq"
            )
            names = [c.name for c in cur.description or ()]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def tamper(self, *statements: str | tuple[str, tuple[Any, ...]]) -> None:
        """Run statements as the superuser with triggers off (replica role), in one transaction."""
        with self.database.connect("admin") as conn:
            conn.execute("SET LOCAL session_replication_role = replica")
            for statement in statements:
                sql, params = statement if isinstance(statement, tuple) else (statement, ())
                conn.execute(sql, params)

    def recompute_from(self, seq: int) -> None:
        """Rewrite every hash from ``seq`` on, correctly, the way a keyless forger would."""
        with self.database.connect("admin") as conn:
            conn.execute("SET LOCAL session_replication_role = replica")
            head = conn.execute(
                "SELECT max(seq) FROM audit_event WHERE tenant_id = %s", (self.id,)
            ).fetchone()[0]
            for s in range(seq, head + 1):
                conn.execute(
                    """
                    UPDATE audit_event AS e SET
                        prev_hash = coalesce(
                            (SELECT p.row_hash FROM audit_event p
                             WHERE p.tenant_id = e.tenant_id AND p.seq = e.seq - 1),
                            signoff.audit_genesis(e.tenant_id)),
                        row_hash = sha256(coalesce(
                            (SELECT p.row_hash FROM audit_event p
                             WHERE p.tenant_id = e.tenant_id AND p.seq = e.seq - 1),
                            signoff.audit_genesis(e.tenant_id))
                          || signoff.audit_canonical(e.tenant_id, e.seq, e.occurred_at,
                             e.actor_id, e.on_behalf_of_id, e.action, e.object_type,
                             e.object_id, e.payload))
                    WHERE e.tenant_id = %s AND e.seq = %s
                    """,
                    (self.id, s),
                )


def create_tenant(database: Any, slug: str | None = None) -> Chain:
    """A bare tenant row (no users): enough for chain tests, and fast."""
    slug = slug or f"au-{uuid.uuid4().hex[:10]}"
    with database.connect("admin") as conn:
        tenant_id = conn.execute(
            "INSERT INTO tenant (slug, name) VALUES (%s, %s) RETURNING id",
            (slug, f"Audit {slug}"),
        ).fetchone()[0]
    return Chain(database=database, id=tenant_id, slug=slug)


@pytest.fixture
def new_chain(database: Any) -> Callable[..., Chain]:
    return lambda slug=None: create_tenant(database, slug)


@pytest.fixture
def chain(new_chain: Callable[..., Chain]) -> Chain:
    """A tenant with ten events in its chain."""
    c = new_chain()
    c.append(10)
    return c


@contextmanager
def in_tenant(app: Any, tenant_id: uuid.UUID) -> Iterator[Any]:
    """An app context with ``tenant_id`` bound; yields the scoped session (rolled back after)."""
    from signoff.db.binding import bound_tenant
    from signoff.extensions import db

    with app.app_context(), bound_tenant(tenant_id):
        try:
            yield db.session
        finally:
            db.session.rollback()
            db.session.remove()
