"""Saving a tenant's new version of a workflow definition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from signoff.billing import quotas
from signoff.workflow import reality, registry
from signoff.workflow.actions.core import (
    Actor,
    _transaction,
)
from signoff.workflow.definitions import parse_definition
from signoff.workflow.errors import DefinitionError, DefinitionWarnings, FieldError
from signoff.workflow.models import Workflow

# --- workflow definitions -------------------------------------------------------------


def do_save_workflow(
    session: Any,
    *,
    actor: Actor,
    key: str,
    definition: Mapping[str, Any],
    check_tenant: bool = False,
    confirm_warnings: bool = False,
) -> int:
    """Store a tenant's new version of a workflow; running requests keep theirs.

    ``check_tenant`` (the admin's web page and API): also check the definition against
    the tenant's roles and members (:mod:`signoff.workflow.reality`): an error refuses
    the save (:class:`DefinitionError`), a warning refuses it
    (:class:`DefinitionWarnings`) unless ``confirm_warnings``."""
    with _transaction(session) as tx:
        if not tx.session.scalar(select(Workflow.id).where(Workflow.key == key)):
            quotas.check_workflows(tx.session)
        if check_tenant:
            defn = parse_definition(key, definition)
            found = reality.check_definition(
                tx.session, defn, registry.tenant_rules(tx.session, tx.tenant_id, key)
            )
            errors = [FieldError(f.path, f.message) for f in found if f.severity == "error"]
            warnings = [FieldError(f.path, f.message) for f in found if f.severity != "error"]
            if errors:
                raise DefinitionError(errors)
            if warnings and not confirm_warnings:
                raise DefinitionWarnings(warnings)
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
