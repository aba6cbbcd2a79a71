"""The workflow cache's generation lives in PostgreSQL (``tenant.config_generation``,
set by the saving transaction) and the configured workflows are part of the key: what
is served never depends on a Redis write succeeding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from signoff.devservers import start_embedded_redis
from signoff.workflow import registry
from tests.conftest import app_config
from tests.integration.workflow.conftest import in_tenant, save

pytestmark = pytest.mark.timeout(300)


def _flow(name: str) -> dict[str, Any]:
    return {"name": name, "steps": [{"name": "M", "required_role": "Manager"}]}


def _generation(database: Any, tenant: Any) -> int:
    with database.connect("admin") as conn:
        row = conn.execute("SELECT config_generation FROM tenant WHERE id = %s", (tenant.id,))
        return int(row.fetchone()[0])


def _keys(url: str, prefix: str, tenant: Any) -> list[str]:
    client = redis_lib.Redis.from_url(url)
    try:
        return [k.decode() for k in client.scan_iter(match=f"{prefix}cache:t:{tenant.id}:*")]
    finally:
        client.close()


def test_saved_while_redis_is_down_is_served_at_once_when_it_returns(
    tmp_path: Path, database, redis_prefix, tenant_factory
):
    from signoff.app import create_app

    server = start_embedded_redis(tmp_path)
    port = server.port
    try:
        one = create_app(app_config(database, server.url, redis_prefix))
        two = create_app(app_config(database, server.url, redis_prefix))
        t = tenant_factory()
        save(one, t, "leave", _flow("Leave v1"))
        for app in (one, two):
            with in_tenant(app, t) as s:
                assert registry.get_effective(s, t.id, "leave").raw["name"] == "Leave v1"
        cached_v1 = _keys(server.url, redis_prefix, t)
        assert cached_v1

        server.stop()
        before = _generation(database, t)
        save(one, t, "leave", _flow("Leave v2"))  # Redis is down: nothing can be bumped there
        assert _generation(database, t) > before
        with in_tenant(two, t) as s:
            assert registry.get_effective(s, t.id, "leave").raw["name"] == "Leave v2"

        server = start_embedded_redis(tmp_path, port=port)
        # Redis came back with its data: the v1 entries are still there ...
        assert set(cached_v1) <= set(_keys(server.url, redis_prefix, t))
        # ... and are never read again: both processes serve v2 at once.
        for app in (two, one):
            with in_tenant(app, t) as s:
                assert registry.get_effective(s, t.id, "leave").raw["name"] == "Leave v2"
    finally:
        server.stop()


def test_a_changed_workflow_configuration_is_served_at_once(
    database, redis_url, redis_prefix, tenant_factory
):
    """A deploy with another FAB_APPROVAL_WORKFLOWS / FAB_APPROVAL_RULES, same Redis."""
    from signoff.app import create_app

    t = tenant_factory()
    old = create_app(
        app_config(
            database, redis_url, redis_prefix, FAB_APPROVAL_WORKFLOWS={"trip": _flow("Trip v1")}
        )
    )
    new = create_app(
        app_config(
            database,
            redis_url,
            redis_prefix,
            FAB_APPROVAL_WORKFLOWS={"trip": _flow("Trip v2")},
            FAB_APPROVAL_RULES=[
                {
                    "name": "Big",
                    "conditions": [{"field": "input_data.amount", "operator": ">", "value": 1}],
                    "approvers": [{"type": "role", "role": "CFO", "required": True}],
                }
            ],
        )
    )
    with in_tenant(old, t) as s:
        assert registry.get_effective(s, t.id, "trip").raw["name"] == "Trip v1"
        assert registry.tenant_rules(s, t.id, "trip") == []
    with in_tenant(new, t) as s:
        assert registry.get_effective(s, t.id, "trip").raw["name"] == "Trip v2"
        assert [r.name for r in registry.tenant_rules(s, t.id, "trip")] == ["Big"]
    with in_tenant(old, t) as s:  # and the old one still reads its own
        assert registry.get_effective(s, t.id, "trip").raw["name"] == "Trip v1"


def test_the_generation_moves_with_the_saving_transaction_only(
    app, database, redis_url, redis_prefix, tenant_factory
):
    from signoff.workflow.models import ApprovalRule

    t, other = tenant_factory(), tenant_factory()
    start, other_start = _generation(database, t), _generation(database, other)
    with in_tenant(app, t) as s:
        registry.add_version(
            s, key="rolled", raw=_flow("Rolled back"), source="tenant", created_by=None
        )
        s.flush()
        assert registry.get_effective(s, t.id, "rolled") is not None  # its own write
        s.rollback()
    assert _generation(database, t) == start
    with in_tenant(app, t) as s:
        assert registry.get_effective(s, t.id, "rolled") is None
        s.add(
            ApprovalRule(
                name="Any",
                workflow_key=None,
                priority=1,
                active=True,
                definition={
                    "name": "Any",
                    "conditions": [{"field": "input_data.amount", "operator": ">", "value": 5}],
                    "approvers": [{"type": "role", "role": "CFO", "required": True}],
                },
            )
        )
        s.commit()
    gen = _generation(database, t)
    assert gen > start
    assert _generation(database, other) == other_start
    with in_tenant(app, t) as s:
        assert [r.name for r in registry.tenant_rules(s, t.id, "x")] == ["Any"]
    keys = _keys(redis_url, redis_prefix, t)
    assert any(k.split(f":t:{t.id}:")[1].startswith(f"{gen}:") for k in keys), keys
