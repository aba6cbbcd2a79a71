"""Where a tenant's workflow definitions come from, and their Redis cache.

Precedence for one tenant and workflow key: the newest version the tenant saved
(``workflow_version.source = 'tenant'``), else the tenant's entry in
``FAB_APPROVAL_TENANT_WORKFLOWS`` (keyed by tenant slug), else the platform default
in ``FAB_APPROVAL_WORKFLOWS``. A tenant's entry replaces the platform's whole.

The effective mapping is cached in Redis under a key that carries the tenant, the
tenant's generation and a digest of the configured workflows and rules. The
generation is ``tenant.config_generation`` in PostgreSQL, set by a trigger on
``workflow``, ``workflow_version`` and ``approval_rule`` in the saving transaction
(``signoff.config_generation_bump``), and read with one small SELECT before each cache
lookup; so a save is visible to every process as soon as it commits, and a changed
``FAB_APPROVAL_*`` configuration as soon as the app runs it. No Redis write decides
what is served: a lost write costs a cache miss (docs/ARCHITECTURE.md §6). When Redis is
down, lookups go to PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.db.binding import current_tenant_id
from signoff.errors import N_
from signoff.extensions import cache
from signoff.tenancy.models import Tenant
from signoff.workflow.definitions import (
    DefinitionError,
    FieldError,
    WorkflowDefinition,
    definition_to_dict,
    parse_definition,
)
from signoff.workflow.models import ApprovalRule, Workflow, WorkflowVersion
from signoff.workflow.rules import Rule, parse_rules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Effective:
    """One workflow as a tenant sees it now."""

    key: str
    raw: dict[str, Any]
    source: str  # tenant | config | platform
    version: int | None  # the tenant-saved version number, if source == 'tenant'

    @property
    def definition(self) -> WorkflowDefinition:
        return parse_definition(self.key, self.raw)


def digest(raw: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


# --- cache ----------------------------------------------------------------------


_CONFIG_KEYS = ("FAB_APPROVAL_WORKFLOWS", "FAB_APPROVAL_TENANT_WORKFLOWS", "FAB_APPROVAL_RULES")


def config_digest() -> str:
    """A short digest of the app's configured workflows and rules, part of every cache
    key: a deploy that changes them reads fresh entries at once. Memoised per app on
    the identity of the configured objects (the configuration is not edited in place)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    values = tuple(app.config.get(k) for k in _CONFIG_KEYS)
    memo = app.extensions.get("signoff.workflow_config_digest")
    if memo is not None and all(a is b for a, b in zip(memo[0], values, strict=True)):
        return str(memo[1])
    value = digest(dict(zip(_CONFIG_KEYS, values, strict=True)))[:16]
    app.extensions["signoff.workflow_config_digest"] = (values, value)
    return value


def tenant_generation(session: Session, tenant_id: uuid.UUID) -> tuple[int, str]:
    """The tenant's cache generation and slug, from PostgreSQL (one small SELECT; the
    saving transaction sets the generation, so it is never stale)."""
    row = session.execute(
        select(Tenant.config_generation, Tenant.slug).where(Tenant.id == tenant_id)
    ).first()
    return (int(row[0]), str(row[1])) if row is not None else (0, "")


def cache_key(session: Session, tenant_id: uuid.UUID, name: str) -> str:
    """``t:<tenant>:<generation>:<config digest>:<slug>:<name>``. The slug picks the
    tenant's entry of FAB_APPROVAL_TENANT_WORKFLOWS."""
    gen, slug = tenant_generation(session, tenant_id)
    return f"t:{tenant_id}:{gen}:{config_digest()}:{slug}:{name}"


def cached(session: Session, tenant_id: uuid.UUID, name: str, build: Any) -> Any:
    """``build()`` cached under (tenant, generation, configuration, name)."""
    key = cache_key(session, tenant_id, name)
    try:
        hit = cache.get(key)
    except Exception:
        log.warning("redis unavailable: reading workflows from PostgreSQL", exc_info=True)
        hit = None
    if hit is not None:
        return hit
    value = build()
    try:
        cache.set(key, value, timeout=current_app.config["FAB_APPROVAL_CACHE_DEFAULT_TIMEOUT"])
    except Exception:
        log.warning("redis unavailable: %s not cached", name)
    return value


# --- lookups --------------------------------------------------------------------


def _config_entries(tenant_slug: str) -> dict[str, tuple[dict[str, Any], str]]:
    cfg = current_app.config
    out: dict[str, tuple[dict[str, Any], str]] = {
        key: (dict(raw), "platform") for key, raw in (cfg["FAB_APPROVAL_WORKFLOWS"] or {}).items()
    }
    tenant_cfg = (cfg["FAB_APPROVAL_TENANT_WORKFLOWS"] or {}).get(tenant_slug) or {}
    for key, raw in tenant_cfg.items():
        out[key] = (dict(raw), "config")
    return out


def _build_effective(session: Session, tenant_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    tenant = session.get(Tenant, tenant_id)
    slug = tenant.slug if tenant else ""
    entries: dict[str, dict[str, Any]] = {
        key: {"raw": raw, "source": source, "version": None}
        for key, (raw, source) in _config_entries(slug).items()
    }
    rows = session.execute(
        select(Workflow.key, Workflow.active, WorkflowVersion.version, WorkflowVersion.definition)
        .join(
            WorkflowVersion,
            (WorkflowVersion.tenant_id == Workflow.tenant_id)
            & (WorkflowVersion.workflow_id == Workflow.id)
            & (WorkflowVersion.version == Workflow.current_version),
        )
        .where(WorkflowVersion.source == "tenant")
    ).all()
    for key, active, version, definition in rows:
        if active:
            entries[key] = {"raw": definition, "source": "tenant", "version": version}
        else:
            entries.pop(key, None)
    return entries


def effective_workflows(session: Session, tenant_id: uuid.UUID) -> dict[str, Effective]:
    data = cached(session, tenant_id, "workflows", lambda: _build_effective(session, tenant_id))
    return {
        key: Effective(key=key, raw=e["raw"], source=e["source"], version=e["version"])
        for key, e in sorted(data.items())
    }


def get_effective(session: Session, tenant_id: uuid.UUID, key: str) -> Effective | None:
    return effective_workflows(session, tenant_id).get(key)


def audited_workflows(
    session: Session, tenant_id: uuid.UUID, roles: Iterable[str]
) -> tuple[str, ...]:
    """The keys of the workflows whose ``auditors`` name one of ``roles`` (the
    all-requests page, read-only, for those workflows' requests)."""
    held = set(roles)
    return tuple(
        key
        for key, effective in effective_workflows(session, tenant_id).items()
        if isinstance(auditors := effective.raw.get("auditors"), list)
        and held.intersection(a for a in auditors if isinstance(a, str))
    )


def tenant_rules(session: Session, tenant_id: uuid.UUID, workflow_key: str) -> list[Rule]:
    """Rules that apply to ``workflow_key``: the tenant's saved ones and FAB_APPROVAL_RULES."""

    def build() -> list[dict[str, Any]]:
        rows = session.scalars(select(ApprovalRule).where(ApprovalRule.active.is_(True))).all()
        return [{"workflow_key": r.workflow_key, "definition": r.definition} for r in rows]

    saved = cached(session, tenant_id, "rules", build)
    raw = [r["definition"] for r in saved if r["workflow_key"] in (None, workflow_key)]
    raw.extend(current_app.config.get("FAB_APPROVAL_RULES") or [])
    return list(parse_rules(raw)) if raw else []


# --- saving ---------------------------------------------------------------------


def _workflow_row(session: Session, key: str, name: str) -> Workflow:
    wf = session.scalars(select(Workflow).where(Workflow.key == key)).first()
    if wf is None:
        wf = Workflow(key=key, name=name, current_version=0)
        session.add(wf)
        session.flush()
    return wf


def _check_rule_references(session: Session, defn: WorkflowDefinition) -> None:
    """Every ``{type: rule}`` approver and escalation target names a rule that exists:
    one of the definition's own ``rules`` or a rule the tenant (or FAB_APPROVAL_RULES)
    has for this workflow. Refused when saved, not discovered at the first submit."""
    specs = [
        (f"steps[{i}].approvers[{j}].rule", spec)
        for i, step in enumerate(defn.steps)
        for j, spec in enumerate(step.approvers)
    ]
    specs += [
        (f"steps[{i}].escalate_to.rule", step.escalate_to)
        for i, step in enumerate(defn.steps)
        if step.escalate_to is not None
    ]
    wanted = [(path, spec.value) for path, spec in specs if spec.kind == "rule"]
    if not wanted:
        return
    known = {rule.name for rule in defn.rules}
    tenant_id = current_tenant_id()
    if tenant_id is not None:
        known |= {rule.name for rule in tenant_rules(session, tenant_id, defn.key)}
    else:
        known |= {
            rule.name for rule in parse_rules(current_app.config.get("FAB_APPROVAL_RULES") or [])
        }
    errors = [
        FieldError(
            path,
            N_(
                "no rule named %(name)s (known rules: %(value)s)",
                name=repr(name),
                value=str(sorted(known) or "none"),
            ),
        )
        for path, name in wanted
        if name not in known
    ]
    if errors:
        raise DefinitionError(errors)


def add_version(
    session: Session,
    *,
    key: str,
    raw: Mapping[str, Any],
    source: str,
    created_by: int | None,
) -> WorkflowVersion:
    """Validate ``raw`` and store it as the next version (in the caller's transaction).

    Versions with source ``config``/``platform`` pin what a request started on
    without making it the tenant's own definition.
    """
    defn = parse_definition(key, raw)
    _check_rule_references(session, defn)
    canonical = definition_to_dict(defn)
    wf = _workflow_row(session, key, defn.name)
    dg = digest(canonical)
    latest = session.scalars(
        select(WorkflowVersion)
        .where(WorkflowVersion.workflow_id == wf.id)
        .order_by(WorkflowVersion.version.desc())
        .limit(1)
    ).first()
    if latest is not None and latest.digest == dg and latest.source == source:
        return latest
    number = (latest.version if latest else 0) + 1
    version = WorkflowVersion(
        workflow_id=wf.id,
        version=number,
        definition=canonical,
        digest=dg,
        source=source,
        created_by=created_by,
    )
    session.add(version)
    if source == "tenant":
        wf.current_version = number
        wf.name = defn.name
        wf.active = True
    session.flush()
    return version


def pin_version(session: Session, effective: Effective, created_by: int) -> WorkflowVersion:
    """The stored version a new request of ``effective`` starts on."""
    if effective.source == "tenant":
        row = session.scalars(
            select(WorkflowVersion)
            .join(
                Workflow,
                (Workflow.tenant_id == WorkflowVersion.tenant_id)
                & (Workflow.id == WorkflowVersion.workflow_id),
            )
            .where(Workflow.key == effective.key, WorkflowVersion.version == effective.version)
        ).first()
        if row is not None:
            return row
    return add_version(
        session,
        key=effective.key,
        raw=effective.raw,
        source=effective.source,
        created_by=created_by,
    )


def validate_rules(raw_rules: Any) -> list[Rule]:
    """Parse rules for saving; a bad rule is rejected with paths like rules[0].operator."""
    if not isinstance(raw_rules, list):
        raise DefinitionError([FieldError("rules", N_("must be a list"))])
    return list(parse_rules(raw_rules))
