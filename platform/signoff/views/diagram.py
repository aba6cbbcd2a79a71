"""A workflow as an inline SVG diagram, drawn on the server (no JavaScript).

Top to bottom: the submission (with the workflow's auto-approve conditions), one
row per step (steps of one ``parallel_group`` side by side), then "Approved".
Each box names the step, its pattern, its approvers and its badges (MFA,
auto-approve threshold, SLA, skip condition). Every text is XML-escaped; the
result is safe to embed with ``|safe``. The drawing scales to the page width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from xml.sax.saxutils import escape

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from signoff.workflow.definitions import ApproverSpec, StepDef, WorkflowDefinition
from signoff.workflow.rules import AllOf, AnyOf, Compare, Condition, Rule, condition_to_dict

WIDTH = 560
MARGIN = 16
BOX_H = 92
GAP = 34
PILL_H = 34
CHAR_W = 6.6  # average glyph width at 12px sans-serif
COLORS = {
    "waiting": ("#ffffff", "#94a3b8"),
    "active": ("#eff6ff", "#2563eb"),
    "approved": ("#f0fdf4", "#16a34a"),
    "skipped": ("#f8fafc", "#94a3b8"),
    "rejected": ("#fef2f2", "#dc2626"),
    "expired": ("#fff7ed", "#ea580c"),
    "cancelled": ("#f8fafc", "#64748b"),
}


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)


def approver_text(spec: ApproverSpec) -> str:
    if spec.kind == "manager":
        text = _("requester's manager")
    elif spec.kind == "role":
        text = _("role %(name)s", name=spec.value)
    elif spec.kind == "user":
        text = _("user %(id)s", id=spec.value)
    else:
        text = _("rule %(name)s", name=spec.value)
    return (
        _("%(who)s (weight %(weight)s)", who=text, weight=spec.weight) if spec.weight != 1 else text
    )


#: The approval patterns as people read them.
PATTERN_WORDS = {
    "sequential": _l("sequential"),
    "parallel": _l("parallel"),
    "unanimous": _l("unanimous"),
    "majority": _l("majority"),
    "first_response": _l("first response"),
    "quorum": _l("quorum"),
    "weighted": _l("weighted"),
}


def pattern_text(step: StepDef) -> str:
    if step.pattern == "quorum" and step.quorum is not None:
        return _("quorum %(num)s", num=step.quorum)
    if step.pattern == "weighted" and step.threshold is not None:
        return _("weighted ≥ %(num)s", num=step.threshold)
    return str(PATTERN_WORDS.get(step.pattern, step.pattern.replace("_", " ")))


def step_badges(step: StepDef) -> list[str]:
    badges = []
    if step.requires_mfa:
        badges.append("MFA")
    if step.auto_approve_threshold is not None:
        badges.append(f"auto ≤ {_num(step.auto_approve_threshold)}")
    if step.sla_hours:
        badges.append(f"SLA {step.sla_hours}h")
    if step.skip_if is not None:
        badges.append("conditional")
    if not step.allow_delegation:
        badges.append("no delegation")
    return badges


OPERATOR_WORDS = {"in": "is one of", "not_in": "is not one of", "contains": "contains"}


def condition_text(cond: Condition) -> str:
    """A rule condition for people: ``amount > 5000 and category is one of travel, food``."""
    if isinstance(cond, Compare):
        name = cond.field.removeprefix("input_data.").replace("_", " ")
        value = cond.value
        shown = ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else value
        return f"{name} {OPERATOR_WORDS.get(cond.operator, cond.operator)} {shown}"
    if isinstance(cond, AllOf):
        return " and ".join(condition_text(c) for c in cond.conditions)
    if isinstance(cond, AnyOf):
        return " or ".join(condition_text(c) for c in cond.conditions)
    return str(condition_to_dict(cond))  # pragma: no cover - every kind is above


def rule_condition_text(rule: Rule) -> str:
    joiner = " and " if rule.match == "all" else " or "
    return joiner.join(condition_text(c) for c in rule.conditions) or "always"


def rule_steps(defn: WorkflowDefinition, rules: Sequence[Rule] = ()) -> list[tuple[Rule, StepDef]]:
    """The steps rules may add to a request (the engine names them ``rule:<name>``), each
    with its rule: ``add_approvers`` rules not already a step's approver source."""
    sourced = {a.value for s in defn.steps for a in s.approvers if a.kind == "rule"}
    out = []
    seen = set()
    for rule in sorted([*defn.rules, *rules], key=lambda r: (-r.priority, r.name)):
        if rule.action != "add_approvers" or rule.name in sourced or rule.name in seen:
            continue
        seen.add(rule.name)
        required = [a for a in rule.approvers if a.required]
        chosen = required or list(rule.approvers)
        step = StepDef(
            name=rule.name,
            pattern="unanimous" if required else "first_response",
            approvers=tuple(ApproverSpec(a.kind, a.value) for a in chosen),
        )
        out.append((rule, step))
    return out


def _fit(text: str, width: float) -> str:
    limit = max(4, int(width / CHAR_W))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rows(steps: Sequence[StepDef]) -> list[list[int]]:
    rows: list[list[int]] = []
    for i, step in enumerate(steps):
        group = step.parallel_group
        if rows and group is not None and steps[rows[-1][0]].parallel_group == group:
            rows[-1].append(i)
        else:
            rows.append([i])
    return rows


def _text(
    x: float,
    y: float,
    body: str,
    *,
    size: int = 12,
    weight: str = "normal",
    anchor: str = "middle",
    fill: str = "#0f172a",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" font-weight="{weight}" '
        f'text-anchor="{anchor}" fill="{fill}">{escape(body)}</text>'
    )


def _arrow(x: float, y1: float, y2: float) -> str:
    return (
        f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2 - 6:.1f}" stroke="#64748b" '
        f'stroke-width="1.5"/><path d="M{x - 5:.1f},{y2 - 8:.1f} L{x:.1f},{y2:.1f} '
        f'L{x + 5:.1f},{y2 - 8:.1f}" fill="none" stroke="#64748b" stroke-width="1.5"/>'
    )


def _pill(y: float, label: str, fill: str, stroke: str) -> str:
    w = min(WIDTH - 2 * MARGIN, max(140.0, len(label) * CHAR_W + 32))
    x = (WIDTH - w) / 2
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{PILL_H}" rx="17" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
        + _text(WIDTH / 2, y + 22, _fit(label, w - 20), size=13, weight="600")
    )


def _auto_text(defn: WorkflowDefinition) -> str | None:
    auto = defn.auto_approve
    if auto is None:
        return None
    parts = []
    if auto.amount_threshold is not None:
        parts.append(f"amount ≤ {_num(auto.amount_threshold)}")
    if auto.user_roles:
        parts.append("requester is " + " or ".join(auto.user_roles))
    return ("Auto-approved if " + " or ".join(parts)) if parts else None


def _box(
    step: StepDef,
    index: int,
    x: float,
    y: float,
    w: float,
    status: str | None,
    *,
    rule: Rule | None = None,
) -> str:
    fill, stroke = COLORS.get(status or "waiting", COLORS["waiting"])
    approvers = ", ".join(approver_text(a) for a in step.approvers) or "—"
    badges = ["added by a rule"] if rule is not None else step_badges(step)
    title = f"{index + 1}. {step.name}" if rule is None else f"+ {step.name}"
    second = pattern_text(step)
    if rule is not None:
        second = f"only when {rule_condition_text(rule)}"
    elif step.skip_if is not None:
        second = f"{second} · skipped when {condition_text(step.skip_if)}"
    full = [title, second, approvers, *badges]
    dash = ' stroke-dasharray="6 4"' if rule is not None or step.skip_if is not None else ""
    kind = "rule-step" if rule is not None else "step"
    parts = [
        f'<g class="{kind}" data-step="{index}"><title>{escape(" | ".join(full))}</title>',
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BOX_H}" rx="8" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if status == "active" else 1.5}"'
        f"{dash}/>",
        _text(x + w / 2, y + 22, _fit(title, w - 16), size=13, weight="600"),
        _text(x + w / 2, y + 41, _fit(second, w - 16), fill="#475569"),
        _text(x + w / 2, y + 59, _fit(approvers, w - 16), fill="#334155"),
    ]
    if status:
        parts.append(_text(x + w - 8, y + 14, status, size=10, anchor="end", fill=stroke))
    # Badges as small rounded tags along the bottom edge.
    bx = x + 8
    for badge in badges:
        bw = len(badge) * 6.0 + 12
        if bx + bw > x + w - 6:
            break
        color = "#b91c1c" if badge == "MFA" else "#475569"
        parts.append(
            f'<rect x="{bx:.1f}" y="{y + 68:.1f}" width="{bw:.1f}" height="16" rx="8" '
            f'fill="#f1f5f9" stroke="{color}" stroke-width="1"/>'
            + _text(bx + bw / 2, y + 80, badge, size=10, fill=color)
        )
        bx += bw + 6
    parts.append("</g>")
    return "".join(parts)


def workflow_svg(
    defn: WorkflowDefinition,
    *,
    steps: Sequence[StepDef] | None = None,
    statuses: Mapping[int, str] | None = None,
    end_label: str = "Approved",
    rules: Sequence[Rule] = (),
) -> Markup:
    """The SVG of ``defn`` (or of ``steps``, e.g. a request's steps with rule-added ones),
    boxes coloured by ``statuses`` (step index -> waiting/active/approved/...).

    Conditional steps (``skip_if``) and the steps rules may add (the workflow's own
    ``add_approvers`` rules and ``rules``, the tenant's) are drawn dashed, each with its
    condition in words."""
    steps = list(defn.steps if steps is None else steps)
    statuses = statuses or {}
    out: list[str] = []
    y = float(MARGIN)
    center = WIDTH / 2
    out.append(_pill(y, "Submitted", "#f8fafc", "#64748b"))
    y += PILL_H
    auto = _auto_text(defn)
    if auto:
        out.append(_text(center, y + 18, _fit(auto, WIDTH - 2 * MARGIN), size=11, fill="#475569"))
        y += 22
    for row in _rows(steps):
        out.append(_arrow(center, y, y + GAP))
        y += GAP
        n = len(row)
        gap = 10.0
        w = (WIDTH - 2 * MARGIN - gap * (n - 1)) / n
        for k, index in enumerate(row):
            x = MARGIN + k * (w + gap)
            out.append(_box(steps[index], index, x, y, w, statuses.get(index)))
        if n > 1:
            group = steps[row[0]].parallel_group or ""
            out.append(
                _text(
                    WIDTH - MARGIN,
                    y - 6,
                    f"parallel: {group}",
                    size=10,
                    anchor="end",
                    fill="#64748b",
                )
            )
        y += BOX_H
    added = rule_steps(defn, rules) if steps == list(defn.steps) else []
    for k, (rule, step) in enumerate(added):
        out.append(_arrow(center, y, y + GAP))
        y += GAP
        w = WIDTH - 2 * MARGIN
        out.append(_box(step, len(steps) + k, MARGIN, y, w, None, rule=rule))
        y += BOX_H
    out.append(_arrow(center, y, y + GAP))
    y += GAP
    out.append(_pill(y, end_label, "#f0fdf4", "#16a34a"))
    y += PILL_H + MARGIN
    title = escape(f"Workflow diagram: {defn.name}", {'"': "&quot;"})
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" '
        f'aria-label="{title}" viewBox="0 0 {WIDTH} {y:.0f}" width="100%" '
        f'style="max-width:{WIDTH}px" font-family="system-ui, -apple-system, Segoe UI, '
        f'Roboto, sans-serif"><title>{title}</title>{"".join(out)}</svg>'
    )
    return Markup(svg)  # noqa: S704 - every interpolated text went through escape()
