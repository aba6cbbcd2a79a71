"""Parsing and validation of ``FAB_APPROVAL_WORKFLOWS`` entries, collecting every error."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from signoff.errors import N_
from signoff.workflow.definitions.model import (
    AMOUNT_FIELD,
    APPROVER_KINDS,
    FIELD_KEYS,
    FIELD_TYPES,
    KEY_RE,
    MAX_APPROVERS,
    MAX_CATEGORY,
    MAX_DESCRIPTION,
    MAX_FIELDS,
    MAX_HOURS,
    MAX_MAX_LENGTH,
    MAX_STEPS,
    NAME_RE,
    PATTERNS,
    PERCENT_RE,
    PRIORITIES,
    STEP_KEYS,
    STEP_TYPES,
    WORKFLOW_KEYS,
    ApproverSpec,
    AutoApprove,
    FieldDef,
    StepDef,
    WorkflowDefinition,
    as_date,
)
from signoff.workflow.errors import DefinitionError, FieldError, check_keys, join_path
from signoff.workflow.rules import (
    Condition,
    parse_condition_into,
    parse_rules_into,
    referenced_fields,
    to_decimal,
)


class _Parser:
    """Collects every error for one document; helpers return None after reporting."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def err(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def text(self, raw: Any, path: str, *, required: bool = False, limit: int = 200) -> str | None:
        if raw is None:
            if required:
                self.err(path, N_("is required"))
            return None
        if not isinstance(raw, str) or (required and not raw.strip()):
            self.err(path, N_("must be a non-empty string") if required else N_("must be a string"))
            return None
        if len(raw) > limit:
            self.err(path, N_("is longer than %(limit)s characters", limit=limit))
            return None
        return raw

    def flag(self, raw: Any, path: str, default: bool) -> bool:
        if raw is None:
            return default
        if not isinstance(raw, bool):
            self.err(path, N_("must be true or false"))
            return default
        return raw

    def count(self, raw: Any, path: str, *, low: int = 1, high: int = 10**6) -> int | None:
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.err(path, N_("must be a whole number >= %(low)s", low=low))
            return None
        if raw < low:
            self.err(path, N_("must be >= %(low)s, got %(raw)s", low=low, raw=raw))
            return None
        if raw > high:
            self.err(path, N_("must be <= %(high)s, got %(raw)s", high=high, raw=raw))
            return None
        return raw

    def amount(self, raw: Any, path: str) -> Decimal | None:
        if raw is None:
            return None
        value = to_decimal(raw)
        if value is None:
            self.err(path, N_("must be a number"))
            return None
        if value < 0:
            self.err(path, N_("must not be negative, got %(raw)s", raw=raw))
            return None
        return value

    def names(self, raw: Any, path: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list | tuple):
            self.err(path, N_("must be a list of strings"))
            return ()
        out: list[str] = []
        for i, item in enumerate(raw):
            name = self.text(item, join_path(path, i), required=True)
            if name is None:
                continue
            if name in out:
                self.err(join_path(path, i), N_("duplicate %(name)s", name=repr(name)))
                continue
            out.append(name)
        return tuple(out)

    def choice(self, raw: Any, path: str, what: str, allowed: tuple[str, ...]) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str) or raw not in allowed:
            self.err(
                path,
                N_(
                    "unknown %(what)s %(raw)s; expected one of %(value)s",
                    what=what,
                    raw=repr(raw),
                    value=", ".join(allowed),
                ),
            )
            return None
        return raw


def _approver(p: _Parser, raw: Any, path: str, *, allow_weight: bool) -> ApproverSpec | None:
    if not isinstance(raw, Mapping):
        p.err(path, N_("must be a mapping like {type: role, role: Manager}"))
        return None
    kind = raw.get("type")
    if kind not in APPROVER_KINDS:
        known = ", ".join(APPROVER_KINDS)
        p.err(
            join_path(path, "type"),
            N_("is required; expected one of %(known)s", known=known)
            if kind is None
            else N_(
                "unknown approver type %(kind)s; expected one of %(known)s",
                kind=repr(kind),
                known=known,
            ),
        )
        return None
    before = len(p.errors)
    value_key = None if kind == "manager" else str(kind)
    check_keys(raw, ["type", "weight", *([value_key] if value_key else [])], path, p.errors)
    value = None
    if value_key:
        value = p.text(raw.get(value_key), join_path(path, value_key), required=True)
    weight = p.count(raw.get("weight"), join_path(path, "weight"))
    if weight is not None and weight != 1 and not allow_weight:
        p.err(join_path(path, "weight"), N_("weight only applies to the weighted pattern"))
    if len(p.errors) > before:
        return None
    return ApproverSpec(str(kind), value, weight or 1)


def _quorum(p: _Parser, raw: Any, path: str) -> int | str | None:
    if isinstance(raw, str):
        match = PERCENT_RE.fullmatch(raw)
        if match is None or not 0 < Decimal(match.group(1)) <= 100:
            p.err(
                path,
                N_(
                    "bad percentage %(raw)s; expected more than 0%% and at most 100%%, like '60%%'",
                    raw=repr(raw),
                ),
            )
            return None
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int):
        p.err(path, N_("must be a count >= 1 or a percentage like '60%'"))
        return None
    if raw < 1:
        p.err(path, N_("quorum %(raw)s must be >= 1", raw=raw))
        return None
    return raw


def _step_approvers(
    p: _Parser, raw: Mapping[str, Any], path: str, pattern: Any
) -> tuple[str | None, list[ApproverSpec], int]:
    """``required_role`` (spec format) or ``approvers`` (extension): role, specs, entry count."""
    raw_role = raw.get("required_role")
    required_role = None
    if raw_role is not None:
        required_role = p.text(raw_role, join_path(path, "required_role"), required=True, limit=100)
    raw_apprs = raw.get("approvers")
    at = join_path(path, "approvers")
    if raw_apprs is not None and raw_role is not None:
        p.err(at, N_("give either required_role or approvers, not both"))
        return required_role, [], 1
    if raw_apprs is None:
        if raw_role is None:
            p.err(path, N_("needs approvers: set required_role or approvers"))
            return None, [], 0
        specs = [] if required_role is None else [ApproverSpec("role", required_role)]
        return required_role, specs, 1
    if not isinstance(raw_apprs, list | tuple) or not raw_apprs:
        p.err(at, N_("must be a non-empty list of approvers"))
        return None, [], 0
    if len(raw_apprs) > MAX_APPROVERS:
        p.err(at, N_("has more than %(MAX_APPROVERS)s approvers", MAX_APPROVERS=MAX_APPROVERS))
        return None, [], len(raw_apprs)
    approvers: list[ApproverSpec] = []
    seen: dict[tuple[str, str | None], int] = {}
    for i, item in enumerate(raw_apprs):
        spec = _approver(p, item, join_path(at, i), allow_weight=pattern == "weighted")
        if spec is None:
            continue
        key = (spec.kind, spec.value)
        if key in seen:
            p.err(join_path(at, i), N_("duplicates approvers[%(item)s]", item=seen[key]))
            continue
        seen[key] = i
        approvers.append(spec)
    return None, approvers, len(raw_apprs)


def _pattern_parameters(
    p: _Parser,
    raw: Mapping[str, Any],
    path: str,
    pattern: Any,
    approvers: list[ApproverSpec],
    n_entries: int,
) -> tuple[int | str | None, int | None]:
    """``quorum`` and ``threshold``, each required by its own pattern and refused elsewhere."""
    quorum = (
        None if raw.get("quorum") is None else _quorum(p, raw["quorum"], join_path(path, "quorum"))
    )
    threshold = p.count(raw.get("threshold"), join_path(path, "threshold"), high=10**9)
    users_only = bool(approvers) and all(a.kind == "user" for a in approvers)
    at_quorum, at_threshold = join_path(path, "quorum"), join_path(path, "threshold")
    if pattern == "quorum":
        if raw.get("quorum") is None:
            p.err(at_quorum, N_("quorum pattern needs quorum (a count or a percentage like '60%')"))
        elif isinstance(quorum, int) and users_only and quorum > len(approvers):
            p.err(
                at_quorum,
                N_(
                    "quorum %(quorum)s exceeds the %(count)s approvers of this step",
                    quorum=quorum,
                    count=len(approvers),
                ),
            )
    elif raw.get("quorum") is not None:
        p.err(at_quorum, N_("quorum only applies to the quorum pattern"))
    if pattern == "weighted":
        if raw.get("threshold") is None:
            p.err(at_threshold, N_("weighted pattern needs a threshold (total weight to approve)"))
        elif threshold is not None and users_only:
            total = sum(a.weight for a in approvers)
            if threshold > total:
                p.err(
                    at_threshold,
                    N_(
                        "threshold %(threshold)s exceeds the total weight %(total)s of the "
                        "approvers",
                        threshold=threshold,
                        total=total,
                    ),
                )
    elif raw.get("threshold") is not None:
        p.err(at_threshold, N_("threshold only applies to the weighted pattern"))
    at_approvers = join_path(path, "approvers")
    if pattern == "parallel" and n_entries == 1:
        p.err(at_approvers, N_("parallel pattern needs at least 2 approvers (one sign-off each)"))
    if pattern == "sequential" and len(approvers) > 1 and not users_only:
        p.err(
            at_approvers,
            N_(
                "a sequential step with several approvers is an ordered list of users; put roles "
                "in separate steps"
            ),
        )
    return quorum, threshold


def _step(p: _Parser, raw: Any, path: str) -> StepDef | None:
    if not isinstance(raw, Mapping):
        p.err(path, N_("must be a mapping"))
        return None
    before = len(p.errors)
    check_keys(raw, STEP_KEYS, path, p.errors)

    def at(key: str) -> str:
        return join_path(path, key)

    name = p.text(raw.get("name"), at("name"), required=True, limit=100)
    description = p.text(raw.get("description"), at("description"), limit=MAX_DESCRIPTION) or ""
    step_type = p.choice(raw.get("step_type"), at("step_type"), "step_type", STEP_TYPES)
    pattern = raw.get("pattern", "sequential")
    if pattern not in PATTERNS:
        p.err(
            at("pattern"),
            N_(
                "unknown pattern %(pattern)s; expected one of %(value)s",
                pattern=repr(pattern),
                value=", ".join(PATTERNS),
            ),
        )
    required_role, approvers, n_entries = _step_approvers(p, raw, path, pattern)
    quorum, threshold = _pattern_parameters(p, raw, path, pattern, approvers, n_entries)

    requires_mfa = p.flag(raw.get("requires_mfa"), at("requires_mfa"), False)
    mfa_timeout = p.count(raw.get("mfa_timeout"), at("mfa_timeout"), high=86_400)
    if mfa_timeout is not None and not requires_mfa:
        p.err(at("mfa_timeout"), N_("mfa_timeout needs requires_mfa: true"))
    threshold_amount = p.amount(raw.get("auto_approve_threshold"), at("auto_approve_threshold"))
    sla_hours = p.count(raw.get("sla_hours"), at("sla_hours"), high=MAX_HOURS)
    reminder_hours = p.count(raw.get("reminder_hours"), at("reminder_hours"), high=MAX_HOURS)
    if sla_hours is not None and reminder_hours is not None and reminder_hours >= sla_hours:
        p.err(
            at("reminder_hours"),
            N_("must be less than sla_hours (%(sla_hours)s)", sla_hours=sla_hours),
        )
    escalate_to = None
    if raw.get("escalate_to") is not None:
        escalate_to = _approver(
            p, raw["escalate_to"], at("escalate_to"), allow_weight=pattern == "weighted"
        )
        if sla_hours is None:
            p.err(
                at("escalate_to"),
                N_("escalate_to needs sla_hours (escalation follows a missed SLA)"),
            )
    allow_delegation = p.flag(raw.get("allow_delegation"), at("allow_delegation"), True)
    skip_if = None
    if raw.get("skip_if") is not None:
        skip_if = parse_condition_into(raw["skip_if"], at("skip_if"), p.errors)
    group = raw.get("parallel_group")
    if group is not None and (not isinstance(group, str) or not NAME_RE.fullmatch(group)):
        p.err(at("parallel_group"), N_("must be a name of letters, digits and underscores"))

    if len(p.errors) > before:
        return None
    assert name is not None
    return StepDef(
        name=name,
        pattern=str(pattern),
        approvers=tuple(approvers),
        required_role=required_role,
        requires_mfa=requires_mfa,
        mfa_timeout=mfa_timeout,
        auto_approve_threshold=threshold_amount,
        quorum=quorum,
        threshold=threshold,
        sla_hours=sla_hours,
        escalate_to=escalate_to,
        reminder_hours=reminder_hours,
        allow_delegation=allow_delegation,
        skip_if=skip_if,
        parallel_group=group,
        description=description,
        step_type=step_type,
    )


def _bound(p: _Parser, raw: Any, path: str, ftype: str) -> Decimal | date | None:
    if raw is None:
        return None
    if ftype == "date":
        value = as_date(raw)
        if value is None:
            p.err(path, N_("must be a date like 2024-12-31"))
        return value
    if ftype not in ("integer", "decimal"):
        p.err(
            path,
            N_(
                "min/max only apply to integer, decimal and date fields, not %(ftype)s", ftype=ftype
            ),
        )
        return None
    number = to_decimal(raw)
    if number is None:
        p.err(path, N_("must be a number"))
        return None
    if ftype == "integer" and number != number.to_integral_value():
        p.err(path, N_("must be a whole number for an integer field"))
        return None
    return number


def _greater(low: Decimal | date | None, high: Decimal | date | None) -> bool:
    if isinstance(low, Decimal) and isinstance(high, Decimal):
        return low > high
    if isinstance(low, date) and isinstance(high, date):
        return low > high
    return False


def _field(p: _Parser, raw: Any, path: str) -> FieldDef | None:
    if not isinstance(raw, Mapping):
        p.err(path, N_("must be a mapping"))
        return None
    before = len(p.errors)
    check_keys(raw, FIELD_KEYS, path, p.errors)
    at = lambda key: join_path(path, key)  # noqa: E731
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        p.err(at("name"), N_("must be a name of letters, digits and underscores (at most 64)"))
    ftype = raw.get("type")
    if ftype not in FIELD_TYPES:
        known = ", ".join(FIELD_TYPES)
        p.err(
            at("type"),
            N_("is required; expected one of %(known)s", known=known)
            if ftype is None
            else N_(
                "unknown type %(kind)s; expected one of %(known)s", kind=repr(ftype), known=known
            ),
        )
        ftype = None
    required = p.flag(raw.get("required"), at("required"), False)
    label = p.text(raw.get("label"), at("label"))
    low = _bound(p, raw.get("min"), at("min"), ftype) if ftype else None
    high = _bound(p, raw.get("max"), at("max"), ftype) if ftype else None
    if _greater(low, high):
        p.err(
            at("min"),
            N_(
                "min %(value)s is greater than max %(value2)s",
                value=raw.get("min"),
                value2=raw.get("max"),
            ),
        )
    max_length = p.count(raw.get("max_length"), at("max_length"), high=MAX_MAX_LENGTH)
    if max_length is not None and ftype not in (None, "string", "text"):
        p.err(at("max_length"), N_("max_length only applies to string and text fields"))
    choices = p.names(raw.get("choices"), at("choices"))
    if ftype == "choice" and not choices:
        p.err(at("choices"), N_("a choice field needs a non-empty list of choices"))
    elif ftype not in (None, "choice") and raw.get("choices") is not None:
        p.err(at("choices"), N_("choices only apply to choice fields"))
    if len(p.errors) > before:
        return None
    assert isinstance(name, str) and isinstance(ftype, str)
    return FieldDef(name, ftype, required, low, high, max_length, choices, label)


def _auto_approve(p: _Parser, raw: Any, path: str) -> AutoApprove | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        p.err(path, N_("must be a mapping with amount_threshold and/or user_roles"))
        return None
    check_keys(raw, ("amount_threshold", "user_roles"), path, p.errors)
    amount = p.amount(raw.get("amount_threshold"), join_path(path, "amount_threshold"))
    roles = p.names(raw.get("user_roles"), join_path(path, "user_roles"))
    if amount is None and not roles:
        return None
    return AutoApprove(amount, roles)


def _cross_checks(p: _Parser, defn: WorkflowDefinition) -> None:
    """Checks that need the whole definition: expiry, groups, field references, amount
    fields."""
    expire = defn.expire_after_hours
    slas = [(s.sla_hours, i) for i, s in enumerate(defn.steps) if s.sla_hours is not None]
    if expire is not None and slas:
        longest, at = max(slas, key=lambda pair: (pair[0], -pair[1]))
        if expire < longest:
            p.err(
                "expire_after_hours",
                N_(
                    "expire_after_hours %(expire)s is less than sla_hours %(longest)s of "
                    "steps[%(at)s] (%(name)s); a request must not expire before its longest step "
                    "SLA",
                    expire=expire,
                    longest=longest,
                    at=at,
                    name=repr(defn.steps[at].name),
                ),
            )
    groups: dict[str, int] = {}
    for i, step in enumerate(defn.steps):
        group = step.parallel_group
        if group is None:
            continue
        if group in groups and groups[group] != i - 1:
            p.err(
                f"steps[{i}].parallel_group",
                N_(
                    "parallel_group %(group)s is split: its steps must be consecutive (first seen "
                    "at steps[%(item)s])",
                    group=repr(group),
                    item=groups[group],
                ),
            )
        groups[group] = i
    if not defn.fields:
        return
    names = {f.name for f in defn.fields}

    def check_condition(cond: Condition, path: str) -> None:
        for dotted in referenced_fields(cond):
            parts = dotted.split(".")
            if parts[0] == "input_data" and len(parts) > 1 and parts[1] not in names:
                p.err(
                    path,
                    N_(
                        "unknown field %(item)s in %(dotted)s; fields are %(value)s",
                        item=repr(parts[1]),
                        dotted=repr(dotted),
                        value=", ".join(sorted(names)),
                    ),
                )

    for i, step in enumerate(defn.steps):
        if step.skip_if is not None:
            check_condition(step.skip_if, f"steps[{i}].skip_if")
    for i, rule in enumerate(defn.rules):
        for j, cond in enumerate(rule.conditions):
            check_condition(cond, f"rules[{i}].conditions[{j}]")
    amount = defn.field(AMOUNT_FIELD)
    has_amount = amount is not None and amount.type in ("integer", "decimal")
    if defn.auto_approve and defn.auto_approve.amount_threshold is not None and not has_amount:
        p.err(
            "auto_approve_conditions.amount_threshold",
            N_(
                "needs an integer or decimal field named %(AMOUNT_FIELD)s",
                AMOUNT_FIELD=repr(AMOUNT_FIELD),
            ),
        )
    for i, step in enumerate(defn.steps):
        if step.auto_approve_threshold is not None and not has_amount:
            p.err(
                f"steps[{i}].auto_approve_threshold",
                N_(
                    "needs an integer or decimal field named %(AMOUNT_FIELD)s",
                    AMOUNT_FIELD=repr(AMOUNT_FIELD),
                ),
            )


def _duplicates(p: _Parser, items: Any, path: str, what: str) -> None:
    """Report repeated names even on items that have other errors."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            continue
        if name in seen:
            p.err(
                f"{path}[{i}].name",
                N_(
                    "duplicate %(what)s name %(name)s (also %(path)s[%(item)s])",
                    what=what,
                    name=repr(name),
                    path=path,
                    item=seen[name],
                ),
            )
        seen.setdefault(name, i)


def parse_definition(key: str, raw: Mapping[str, Any]) -> WorkflowDefinition:
    """Validate one ``FAB_APPROVAL_WORKFLOWS`` entry; raise :class:`DefinitionError` with all
    problems (paths like ``steps[1].quorum``) or return the frozen definition."""
    p = _Parser()
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        p.err(
            "key",
            N_(
                "workflow key %(key)s must start with a lowercase letter and use only lowercase "
                "letters, digits and '_' (at most 64 characters), e.g. 'expense_approval'",
                key=repr(key),
            ),
        )
    if not isinstance(raw, Mapping):
        p.err("", N_("a workflow definition must be a mapping"))
        raise DefinitionError(p.errors)
    check_keys(raw, WORKFLOW_KEYS, "", p.errors)
    name = p.text(raw.get("name"), "name", required=True)
    description = p.text(raw.get("description"), "description", limit=MAX_DESCRIPTION) or ""
    raw_category = raw.get("category")
    category = p.text(
        raw_category, "category", required=raw_category is not None, limit=MAX_CATEGORY
    )
    priority = p.choice(raw.get("priority"), "priority", "priority", PRIORITIES)
    estimated = p.count(
        raw.get("estimated_duration_hours"), "estimated_duration_hours", high=MAX_HOURS
    )
    expire_after = p.count(raw.get("expire_after_hours"), "expire_after_hours", high=MAX_HOURS)
    require_reason = p.flag(raw.get("require_reason"), "require_reason", True)
    initial_state = p.text(
        raw.get("initial_state"), "initial_state", required="initial_state" in raw, limit=100
    )
    states = p.names(raw.get("approval_required_states"), "approval_required_states")
    auditors = p.names(raw.get("auditors"), "auditors")
    auto = _auto_approve(p, raw.get("auto_approve_conditions"), "auto_approve_conditions")

    steps: list[StepDef] = []
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, list | tuple) or not raw_steps:
        p.err("steps", N_("a workflow needs a non-empty list of steps"))
    elif len(raw_steps) > MAX_STEPS:
        p.err("steps", N_("has more than %(MAX_STEPS)s steps", MAX_STEPS=MAX_STEPS))
    else:
        for i, item in enumerate(raw_steps):
            step = _step(p, item, f"steps[{i}]")
            if step is not None:
                steps.append(step)
        _duplicates(p, raw_steps, "steps", "step")

    fields: list[FieldDef] = []
    raw_fields = raw.get("fields", [])
    if not isinstance(raw_fields, list | tuple):
        p.err("fields", N_("must be a list of fields"))
    elif len(raw_fields) > MAX_FIELDS:
        p.err("fields", N_("has more than %(MAX_FIELDS)s fields", MAX_FIELDS=MAX_FIELDS))
    else:
        for i, item in enumerate(raw_fields):
            fdef = _field(p, item, f"fields[{i}]")
            if fdef is not None:
                fields.append(fdef)
        _duplicates(p, raw_fields, "fields", "field")

    rules = parse_rules_into(raw.get("rules", []), "rules", p.errors)
    if p.errors:
        raise DefinitionError(p.errors)
    defn = WorkflowDefinition(
        key=key,
        name=str(name),
        description=description,
        steps=tuple(steps),
        fields=tuple(fields),
        initial_state=initial_state or "pending",
        approval_required_states=states,
        auto_approve=auto,
        rules=rules,
        category=category,
        priority=priority,
        estimated_duration_hours=estimated,
        expire_after_hours=expire_after,
        require_reason=require_reason,
        auditors=auditors,
    )
    _cross_checks(p, defn)
    if p.errors:
        raise DefinitionError(p.errors)
    return defn


def parse_definitions(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, WorkflowDefinition]:
    """Validate a whole ``FAB_APPROVAL_WORKFLOWS`` mapping; paths are prefixed by the key."""
    if not isinstance(raw, Mapping):
        raise DefinitionError([FieldError("", N_("FAB_APPROVAL_WORKFLOWS must be a mapping"))])
    out: dict[str, WorkflowDefinition] = {}
    errors: list[FieldError] = []
    for key, entry in raw.items():
        try:
            out[key] = parse_definition(key, entry)
        except DefinitionError as exc:
            errors.extend(
                FieldError(join_path(str(key), e.path) if e.path else str(key), e.message)
                for e in exc.errors
            )
    if errors:
        raise DefinitionError(errors)
    return out


def effective_definitions(
    base: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, WorkflowDefinition]:
    """A tenant's workflows: ``FAB_APPROVAL_WORKFLOWS`` with the tenant's entry (from
    ``FAB_APPROVAL_TENANT_WORKFLOWS[tenant]``) replacing the one of the same key whole.

    Replacement, not a deep merge: merging step lists by position would silently pair
    unrelated steps. A tenant can also add workflows of its own.
    """
    if overrides is not None and not isinstance(overrides, Mapping):
        raise DefinitionError([FieldError("", N_("tenant workflows must be a mapping"))])
    return parse_definitions({**base, **(overrides or {})})
