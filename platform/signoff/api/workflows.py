"""``/api/v1/workflows``: the tenant's effective workflows, their versions, and authoring.

Every member reads the workflows (a requester needs the field schema to submit)
and may validate a definition without saving it; the tenant ``Admin`` saves new
versions (``do_save_workflow``: versioned, audited, running requests keep their
version) and exports/imports the workflows-and-rules part of the tenant manifest
as YAML (:mod:`signoff.provisioning.manifest`: the same format and code as
``signoff tenants export/apply``). The keys ``validate``, ``export`` and ``import``
are reserved for those routes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml
from flask import Response as FlaskResponse
from flask import current_app, request
from flask_appbuilder.api import expose
from sqlalchemy import select
from werkzeug.wrappers import Response

from signoff.api import errors
from signoff.api.base import (
    BadBody,
    TenantBaseApi,
    endpoint,
    json_body,
    openapi,
    query_args,
    transaction,
)
from signoff.api.common_schemas import WORKFLOW_KEY_RE, ErrorSchema
from signoff.api.requests import current_user_id
from signoff.api.workflows_schemas import (
    ExportQuerySchema,
    ImportResultSchema,
    ValidationResultSchema,
    WorkflowBundleSchema,
    WorkflowDetailSchema,
    WorkflowListSchema,
    WorkflowSavedSchema,
    WorkflowSummarySchema,
    WorkflowValidateSchema,
    WorkflowVersionCreateSchema,
    WorkflowVersionDetailSchema,
    WorkflowVersionListSchema,
    WorkflowVersionSchema,
)
from signoff.audit.chain import append as audit_append
from signoff.db.binding import current_tenant_id
from signoff.errors import N_
from signoff.extensions import db
from signoff.inputs import BadInput, parse_json
from signoff.languages import translated_errors
from signoff.roles import ADMIN_ROLE
from signoff.security.actor import request_actor
from signoff.tenancy.access import current_tenant, require_tenant
from signoff.workflow import actions, registry
from signoff.workflow.actions import NotFound
from signoff.workflow.definitions import (
    DefinitionError,
    FieldError,
    definition_to_dict,
    parse_definition,
)
from signoff.workflow.errors import DefinitionWarnings
from signoff.workflow.models import Workflow, WorkflowVersion

RESERVED_KEYS = frozenset({"validate", "export", "import"})
#: Keys the registry may hold (config keys are looser than the database's).
LOOKUP_KEY = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
_LOOKUP_RE = re.compile(LOOKUP_KEY)
_SAVE_RE = re.compile(WORKFLOW_KEY_RE)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
IMPORT_MAX_BYTES = 1024 * 1024

_KEY = [("key", {"type": "string", "pattern": LOOKUP_KEY})]


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases: no "billion laughs" expansion on import."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


def _summary(key: str, eff: registry.Effective) -> dict[str, Any]:
    try:
        defn = parse_definition(key, eff.raw)
    except DefinitionError:
        return {
            "key": key,
            "name": str(eff.raw.get("name") or key),
            "description": "",
            "source": eff.source,
            "version": eff.version,
            "steps": 0,
            "fields": [],
            "valid": False,
            "definition": dict(eff.raw),
        }
    canonical = definition_to_dict(defn)
    return {
        "key": key,
        "name": defn.name,
        "description": defn.description,
        "source": eff.source,
        "version": eff.version,
        "steps": len(defn.steps),
        "fields": canonical.get("fields", []),
        "valid": True,
        "definition": canonical,
    }


def _effective(key: str) -> registry.Effective:
    if not _LOOKUP_RE.match(key):
        raise NotFound("not_found", "Not found")
    eff = registry.get_effective(db.session, require_tenant(), key)
    if eff is None:
        raise NotFound("not_found", "Not found")
    return eff


def _workflow_row(key: str) -> Workflow | None:
    if not _SAVE_RE.match(key):
        return None
    return db.session.scalars(select(Workflow).where(Workflow.key == key)).first()


def _version_dict(key: str, wf: Workflow, v: WorkflowVersion) -> dict[str, Any]:
    return {
        "key": key,
        "version": v.version,
        "source": v.source,
        "digest": v.digest,
        "created_by": v.created_by,
        "created_at": v.created_at,
        "current": v.source == "tenant" and v.version == wf.current_version,
        "definition": v.definition,
    }


def _prefixed(prefix: str, exc: DefinitionError) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, msgs in exc.as_dict().items():
        full = f"{prefix}.{path}" if path else prefix
        out.setdefault(full, []).extend(msgs)
    return out


def _bundle_errors(bundle: Mapping[str, Any]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    workflows = bundle.get("workflows") or {}
    for key, raw in workflows.items():
        if key in RESERVED_KEYS:
            problems.setdefault(f"workflows.{key}", []).append(N_("this key is reserved"))
        try:
            parse_definition(key, raw)
        except DefinitionError as exc:
            problems.update(_prefixed(f"workflows.{key}", exc))
    rules = bundle.get("rules") or []
    for i, rule in enumerate(rules):
        wf = rule.get("workflow")
        if wf is not None and (not isinstance(wf, str) or not _SAVE_RE.match(wf)):
            problems.setdefault(f"rules[{i}].workflow", []).append(N_("must be a workflow key"))
    try:
        registry.validate_rules([{k: v for k, v in r.items() if k != "workflow"} for r in rules])
    except DefinitionError as exc:
        for path, msgs in exc.as_dict().items():
            problems.setdefault(path or "rules", []).extend(msgs)
    return problems


def _read_bundle() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if len(raw) > IMPORT_MAX_BYTES:
        raise BadBody(f"The body is larger than {IMPORT_MAX_BYTES} bytes", 413)
    if request.mimetype in YAML_TYPES:
        try:
            payload = yaml.load(raw.decode("utf-8"), Loader=_NoAliasLoader)  # noqa: S506
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise BadBody(f"The body is not valid YAML: {type(exc).__name__}") from None
        except RecursionError:
            raise BadBody("The YAML nests too deeply") from None
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise DefinitionError([FieldError("body", "must be a mapping")])
        # YAML may carry dates and other non-JSON scalars: keep only what JSON can say,
        # checked as a JSON body is (depth, NUL, unpaired surrogates).
        try:
            text = json.dumps(payload, default=str)
            payload = parse_json(text.encode())  # ASCII: json.dumps escapes the rest
        except BadInput as exc:
            raise BadBody(f"{exc.field}: {exc.message}", field=exc.field) from None
        except (ValueError, RecursionError):
            raise BadBody("The YAML holds values JSON cannot represent") from None
        loaded: dict[str, Any] = WorkflowBundleSchema().load(payload)
        return loaded
    return json_body(WorkflowBundleSchema(), required=True)


class WorkflowsApi(TenantBaseApi):
    resource_name = "workflows"
    openapi_spec_tag = "Workflows"
    openapi_spec_component_schemas = (
        ErrorSchema,
        WorkflowSummarySchema,
        WorkflowListSchema,
        WorkflowDetailSchema,
        WorkflowVersionSchema,
        WorkflowVersionDetailSchema,
        WorkflowVersionListSchema,
        WorkflowVersionCreateSchema,
        WorkflowSavedSchema,
        WorkflowValidateSchema,
        ValidationResultSchema,
        WorkflowBundleSchema,
        ImportResultSchema,
    )

    @expose("/", methods=("GET",))
    @endpoint("read")
    @openapi(
        "List workflows",
        description="The tenant's effective workflows (its own versions, else configured).",
        ok={200: WorkflowListSchema},
        errors=(401, 403),
    )
    def get_list(self) -> Response:
        effective = registry.effective_workflows(db.session, require_tenant())
        items = [_summary(k, e) for k, e in effective.items()]
        return self.response(
            200, **WorkflowListSchema().dump({"count": len(items), "result": items})
        )

    @expose("/<key>", methods=("GET",))
    @endpoint("read")
    @openapi(
        "Get a workflow",
        description="The effective definition, with its field schema.",
        path=_KEY,
        ok={200: WorkflowDetailSchema},
    )
    def get(self, key: str) -> Response:
        eff = _effective(key)
        return self.response(200, **WorkflowDetailSchema().dump(_summary(key, eff)))

    @expose("/<key>/versions", methods=("GET",))
    @endpoint("read")
    @openapi(
        "List versions of a workflow",
        description="Every stored version, newest first (requests pin the one they began on).",
        path=_KEY,
        ok={200: WorkflowVersionListSchema},
    )
    def versions(self, key: str) -> Response:
        wf = _workflow_row(key)
        if wf is None:
            _effective(key)  # 404 unless the workflow exists (configured only: no versions)
            rows: list[dict[str, Any]] = []
        else:
            rows = [
                _version_dict(key, wf, v)
                for v in db.session.scalars(
                    select(WorkflowVersion)
                    .where(WorkflowVersion.workflow_id == wf.id)
                    .order_by(WorkflowVersion.version.desc())
                )
            ]
        body = WorkflowVersionListSchema().dump({"key": key, "count": len(rows), "result": rows})
        return self.response(200, **body)

    @expose("/<key>/versions/<int:version>", methods=("GET",))
    @endpoint("read")
    @openapi(
        "Get a version of a workflow",
        path=[*_KEY, ("version", {"type": "integer", "minimum": 0})],
        ok={200: WorkflowVersionDetailSchema},
    )
    def get_version(self, key: str, version: int) -> Response:
        wf = _workflow_row(key)
        row = None
        if wf is not None and version <= 2**31 - 1:
            row = db.session.scalars(
                select(WorkflowVersion).where(
                    WorkflowVersion.workflow_id == wf.id, WorkflowVersion.version == version
                )
            ).first()
        if wf is None or row is None:
            raise NotFound("not_found", "Not found")
        return self.response(200, **WorkflowVersionDetailSchema().dump(_version_dict(key, wf, row)))

    @expose("/<key>/versions", methods=("POST",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Create a new version (tenant Admin)",
        description=(
            "Validate and store `definition` as the workflow's next version; new requests use "
            "it, running ones keep theirs. Identical to the current version: nothing is "
            "stored (200, created=false). Invalid: 422 with every problem by path. The "
            "definition is also checked against the tenant: an unknown role or user (also in "
            "a rule's approvers) is 422 `invalid_definition`; a role with no members or a "
            "quorum/threshold the approvers cannot reach is 422 `unconfirmed_warnings` unless "
            "`confirm_warnings` is true."
        ),
        path=[("key", {"type": "string", "pattern": WORKFLOW_KEY_RE})],
        body=WorkflowVersionCreateSchema,
        body_required=True,
        ok={201: ("Created", WorkflowSavedSchema), 200: ("Unchanged", WorkflowSavedSchema)},
        errors=(400, 401, 403, 409, 415, 422),
    )
    def create_version(self, key: str) -> Response:
        if not _SAVE_RE.match(key) or key in RESERVED_KEYS:
            return errors.error_response(
                422,
                "invalid",
                "key: lower-case letters, digits and _ (at most 64), starting with a letter; "
                "not validate/export/import",
                field="key",
            )
        data = json_body(WorkflowVersionCreateSchema(), required=True)
        before = registry.get_effective(db.session, require_tenant(), key)
        try:
            number = actions.do_save_workflow(
                db.session,
                actor=request_actor(method="api"),
                key=key,
                definition=data["definition"],
                check_tenant=True,
                confirm_warnings=bool(data.get("confirm_warnings")),
            )
        except DefinitionWarnings as exc:
            db.session.rollback()
            return errors.error_response(
                422,
                "unconfirmed_warnings",
                N_(
                    "Not saved: %(warnings)s. Send confirm_warnings: true to save anyway",
                    warnings=[
                        N_("%(path)s: %(message)s", path=e.path, message=e.message)
                        if e.path
                        else e.message
                        for e in exc.errors
                    ],
                ),
                field=next(iter(exc.as_dict()), None),
                errors=exc.as_dict(),
            )
        except DefinitionError as exc:
            db.session.rollback()
            return errors.from_field_errors(exc, code="invalid_definition")
        created = not (
            before is not None and before.source == "tenant" and before.version == number
        )
        body = WorkflowSavedSchema().dump({"key": key, "version": number, "created": created})
        return self.response(201 if created else 200, **body)

    @expose("/validate", methods=("POST",))
    @endpoint("read")
    @openapi(
        "Validate a definition without saving it",
        description="200 either way: `valid` says whether it would be accepted, `errors` why not.",
        body=WorkflowValidateSchema,
        body_required=True,
        ok={200: ValidationResultSchema},
        errors=(400, 401, 403, 415, 422),
    )
    def validate(self) -> Response:
        data = json_body(WorkflowValidateSchema(), required=True)
        try:
            defn = parse_definition(data["key"], data["definition"])
        except DefinitionError as exc:
            body = {"valid": False, "errors": translated_errors(exc.as_dict()), "definition": None}
        else:
            body = {"valid": True, "errors": {}, "definition": definition_to_dict(defn)}
        return self.response(200, **ValidationResultSchema().dump(body))

    @expose("/export", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "Export workflows and rules (tenant Admin)",
        description=(
            "The `workflows` and `rules` of the tenant manifest, as YAML (default) or JSON."
        ),
        query=ExportQuerySchema,
        ok_content={
            200: {
                "application/yaml": WorkflowBundleSchema,
                "application/json": WorkflowBundleSchema,
            }
        },
        errors=(401, 403, 422),
    )
    def export(self) -> Response:
        from signoff.provisioning.manifest import export_manifest

        args = query_args(ExportQuerySchema())
        tenant = current_tenant(db.session)
        slug = tenant.slug
        manifest = export_manifest(current_app, db.session, slug)
        bundle = {"workflows": manifest.get("workflows", {}), "rules": manifest.get("rules", [])}
        if args["format"] == "json":
            return self.response(200, **bundle)
        text = yaml.safe_dump(bundle, sort_keys=False, allow_unicode=True)
        resp = FlaskResponse(text, status=200, mimetype="application/yaml")
        resp.headers["Content-Disposition"] = f'attachment; filename="{slug}-workflows.yaml"'
        return resp

    @expose("/import", methods=("POST",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Import workflows and rules (tenant Admin)",
        description=(
            "Apply the `workflows` and `rules` of a tenant manifest (YAML or JSON), all or "
            "nothing: a workflow gets a new version only when its text changed; rules are "
            "upserted by name. Everything is validated first (422 with every problem)."
        ),
        body_content={"application/yaml": WorkflowBundleSchema},
        body=WorkflowBundleSchema,
        body_required=True,
        ok={200: ImportResultSchema},
        errors=(400, 401, 403, 413, 415, 422),
    )
    def import_(self) -> Response:
        from signoff.provisioning.manifest import ApplyReport, ManifestError, _apply_workflows

        bundle = _read_bundle()
        problems = _bundle_errors(bundle)
        if problems:
            field = next(iter(problems))
            return errors.error_response(
                422,
                "invalid_definition",
                f"{field}: {problems[field][0]}",
                field=field,
                errors=problems,
            )
        tenant_id = current_tenant_id()
        if tenant_id is None:  # the before_request guarantees one
            raise NotFound("not_found", "Not found")
        report = ApplyReport(tenant=current_tenant(db.session).slug)
        try:
            with transaction() as session:
                _apply_workflows(session, bundle, report)
                audit_append(
                    session,
                    actor_id=current_user_id(),
                    on_behalf_of_id=None,
                    action="workflows.imported",
                    object_type="workflow",
                    object_id=None,
                    payload={
                        "created": report.created,
                        "updated": report.updated,
                        "method": "api",
                    },
                )
        except (ManifestError, DefinitionError) as exc:
            return errors.error_response(422, "invalid_definition", str(exc), field="body")
        effective = registry.effective_workflows(db.session, tenant_id)
        versions = {
            key: effective[key].version or 0
            for key in (bundle.get("workflows") or {})
            if key in effective
        }
        body = ImportResultSchema().dump(
            {"created": report.created, "updated": report.updated, "workflows": versions}
        )
        return self.response(200, **body)
