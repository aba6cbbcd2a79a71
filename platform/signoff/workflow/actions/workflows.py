"""Saving a tenant's new version of a workflow definition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from signoff.billing import quotas
from signoff.workflow import registry
from signoff.workflow.actions.core import (
    Actor,
    _transaction,
)
from signoff.workflow.models import Workflow

# --- workflow definitions -------------------------------------------------------------


def do_save_workflow(session: Any, *, actor: Actor, key: str, definition: Mapping[str, Any]) -> int:
    """Store a tenant's new version of a workflow; running requests keep theirs."""
    with _transaction(session) as tx:
        if not tx.session.scalar(select(Workflow.id).where(Workflow.key == key)):
            quotas.check_workflows(tx.session)
        version = registry.add_version(
            tx.session, key=key, raw=definition, source="tenant", created_by=actor.user_id
        )
        tx.audit(
            actor_id=actor.user_id,
            on_behalf_of_id=None,
            action="workflow.version_saved",
            object_type="workflow",
            object_id=key,
            payload={"version": version.version, "digest": version.digest},
        )
        number = version.version
    return number
