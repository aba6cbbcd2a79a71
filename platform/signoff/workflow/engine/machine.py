"""The request state machine: submit, decide, withdraw, resubmit, escalate, expire.

Every function takes the current :class:`RequestState` (plus concrete data the action layer
resolved: user ids, weights, the clock) and returns a :class:`Transition`, or raises
:class:`Refusal`. Invalid *arguments* (wrong number of eligible sets, non-integer ids) are
programming errors and raise :class:`ValueError` instead.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeAlias

from signoff.errors import N_
from signoff.workflow.definitions import (
    AMOUNT_FIELD,
    ApproverSpec,
    StepDef,
    WorkflowDefinition,
)
from signoff.workflow.engine.patterns import (
    initial_need,
    may_take_turn,
    outcome,
    reachable,
    turn,
)
from signoff.workflow.engine.state import (
    ACTIVE_REQUEST_STATUSES,
    VERDICTS,
    Decision,
    Event,
    FrozenDict,
    Refusal,
    RequestState,
    StepState,
    Transition,
    event,
)
from signoff.workflow.rules import Rule, evaluate, make_context, matching_rules, to_decimal

__all__ = [
    "EligibleInput",
    "decide",
    "escalate",
    "expire",
    "extra_steps_for_rules",
    "overdue_steps",
    "resubmit",
    "start",
    "withdraw",
]

#: Per step, either one ``{user_id: weight}`` mapping or one mapping per approver entry.
EligibleInput: TypeAlias = Mapping[int, int] | Sequence[Mapping[int, int]]

SLOT_PATTERNS = frozenset({"sequential", "parallel"})


# --------------------------------------------------------------------------- rules

#: A rule-added step is named ``rule:<rule name>`` (:func:`extra_steps_for_rules`).
RULE_STEP_PREFIX = "rule:"


def step_label(name: str | None) -> str:
    """A step's name for people, everywhere it is shown (portal, e-mail, Slack, the
    notification centre): a rule-added step ``rule:High value`` reads
    ``High value (added by a rule)``."""
    if not name:
        return ""
    if name.startswith(RULE_STEP_PREFIX):
        return f"{name[len(RULE_STEP_PREFIX) :]} (added by a rule)"
    return name


#: A request's status in people's words ("sent back for changes", not
#: ``changes_requested``), wherever a status is said rather than shown as a badge.
STATUS_WORDS = {
    "pending": N_("waiting for approval"),
    "changes_requested": N_("sent back for changes"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "withdrawn": N_("withdrawn"),
    "expired": N_("expired"),
}


def status_words(status: str | None) -> str:
    """``STATUS_WORDS`` of ``status``; an unknown status with its underscores as spaces."""
    if not status:
        return ""
    return STATUS_WORDS.get(status, status.replace("_", " "))


def extra_steps_for_rules(
    defn: WorkflowDefinition,
    context: Mapping[str, Any],
    *,
    global_rules: Iterable[Rule] = (),
) -> list[StepDef]:
    """One extra step per matching ``add_approvers`` rule, highest priority first
    (except rules a step already uses as its approver source).

    The step is named ``rule:<rule name>``. With required approvers it is ``unanimous``
    over them (optional ones are then informational only); with only optional approvers
    it is ``first_response`` over them. The action layer resolves these steps' approvers
    like any other and passes ``extra_steps`` plus their eligible sets to :func:`start`.
    """
    # A rule a step names as its approver source (``{type: rule}``) feeds that step;
    # it does not add a step of its own as well.
    sourced = {spec.value for step in defn.steps for spec in step.approvers if spec.kind == "rule"}
    steps: list[StepDef] = []
    for rule in matching_rules([*defn.rules, *global_rules], context):
        if rule.action != "add_approvers" or rule.name in sourced:
            continue
        required = [a for a in rule.approvers if a.required]
        chosen = required or list(rule.approvers)
        steps.append(
            StepDef(
                name=f"{RULE_STEP_PREFIX}{rule.name}",
                pattern="unanimous" if required else "first_response",
                approvers=tuple(ApproverSpec(a.kind, a.value) for a in chosen),
            )
        )
    return steps


def _auto_approve_reason(
    defn: WorkflowDefinition,
    requester_roles: Collection[str],
    amount: Decimal | None,
    context: Mapping[str, Any],
    global_rules: Iterable[Rule],
) -> str | None:
    """Why the whole request is approved at submission, or None."""
    auto = defn.auto_approve
    if auto is not None:
        limit = auto.amount_threshold
        if limit is not None and amount is not None and amount <= limit:
            return "amount_threshold"
        if set(auto.user_roles) & set(requester_roles):
            return "user_role"
    for rule in matching_rules([*defn.rules, *global_rules], context):
        if rule.action == "auto_approve":
            return f"rule:{rule.name}"
    return None


def _skip_reason(step: StepDef, amount: Decimal | None, context: Mapping[str, Any]) -> str | None:
    """Why a step is skipped (counted as approved) at submission, or None."""
    if step.skip_if is not None and evaluate(step.skip_if, context):
        return "skip_if"
    threshold = step.auto_approve_threshold
    if threshold is not None and amount is not None and amount <= threshold:
        return "auto_approve_threshold"
    return None


# --------------------------------------------------------------------------- building steps


def _weights(raw: Mapping[int, int], where: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for uid, weight in raw.items():
        if isinstance(uid, bool) or not isinstance(uid, int):
            raise ValueError(f"{where}: user ids must be integers, got {uid!r}")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise ValueError(f"{where}: weights must be integers >= 1, got {weight!r}")
        out[uid] = weight
    return out


def _groups(step: StepDef, raw: EligibleInput, where: str) -> list[dict[int, int]]:
    """The eligible input as one group per slot.

    A list is one group per approver entry. A single mapping is one group, except for a
    sequential or parallel step with several entries, where each user becomes a slot of
    their own in the mapping's order (an ordered list of users).
    """
    if isinstance(raw, Mapping):
        flat = _weights(raw, where)
        if step.pattern in SLOT_PATTERNS and len(step.approvers) > 1:
            return [{uid: w} for uid, w in flat.items()]
        return [flat]
    groups = [_weights(g, f"{where}[{i}]") for i, g in enumerate(raw)]
    if step.approvers and len(groups) != len(step.approvers):
        raise ValueError(
            f"{where}: {len(groups)} eligible groups for {len(step.approvers)} approver entries"
        )
    return groups


def _build_step(
    index: int,
    step: StepDef,
    raw: EligibleInput,
    requester_id: int,
    skip_reason: str | None,
    *,
    enforce: bool,
    related_ids: frozenset[int] = frozenset(),
) -> StepState:
    """A waiting (or skipped) step; with ``enforce``, refuse one that could never complete."""
    groups = _groups(step, raw, f"eligible_by_step[{index}]")
    eligible: dict[int, int] = {}
    slots: list[tuple[int, ...]] = []
    empty_slot = False
    for group in groups:
        members = {
            uid: w for uid, w in group.items() if uid != requester_id and uid not in related_ids
        }
        empty_slot = empty_slot or not members
        slots.append(tuple(members))
        for uid, weight in members.items():
            eligible[uid] = max(weight, eligible.get(uid, 0))
    if step.pattern not in SLOT_PATTERNS:
        slots = []
    enforced = enforce and skip_reason is None
    roles = sorted({a.value for a in step.approvers if a.kind == "role" and a.value})
    if not roles and step.required_role:
        roles = [step.required_role]
    if enforced and (not eligible or (step.pattern in SLOT_PATTERNS and empty_slot)):
        raise Refusal(
            "no_eligible_approver",
            N_(
                "step '%(name)s' has no one but the requester (or no one at all) who may "
                "approve it (role %(roles)s: invite a member with it)",
                name=step.name,
                roles=", ".join(roles),
            )
            if roles
            else N_(
                "step '%(name)s' has no one but the requester (or no one at all) who may "
                "approve it",
                name=step.name,
            ),
            step=index,
        )
    need = initial_need(step.pattern, eligible, slots, quorum=step.quorum, threshold=step.threshold)
    if enforce and skip_reason is None and not reachable(step.pattern, eligible, slots, need):
        raise Refusal(
            "not_enough_approvers",
            N_(
                "step '%(name)s' needs %(need)s but its approvers can never reach it "
                "(role %(roles)s: invite more members with it)",
                name=step.name,
                need=need,
                roles=", ".join(roles),
            )
            if roles
            else N_(
                "step '%(name)s' needs %(need)s but its approvers can never reach it "
                "(add approvers to the step)",
                name=step.name,
                need=need,
            ),
            step=index,
        )
    return StepState(
        index=index,
        name=step.name,
        pattern=step.pattern,
        status="skipped" if skip_reason else "waiting",
        eligible=FrozenDict(eligible),
        slots=tuple(slots),
        need=need,
        requires_mfa=step.requires_mfa,
        mfa_timeout=step.mfa_timeout,
        parallel_group=step.parallel_group,
        quorum=step.quorum,
        threshold=step.threshold,
        allow_delegation=step.allow_delegation,
        sla_hours=step.sla_hours,
        skip_reason=skip_reason,
    )


def _due(now: datetime, sla_hours: int | None) -> datetime | None:
    return None if sla_hours is None else now + timedelta(hours=sla_hours)


def _group_run(steps: Sequence[StepState], index: int) -> range:
    """The consecutive steps sharing ``steps[index]``'s parallel group (just it if none)."""
    group = steps[index].parallel_group
    if group is None:
        return range(index, index + 1)
    lo = index
    while lo > 0 and steps[lo - 1].parallel_group == group:
        lo -= 1
    hi = index + 1
    while hi < len(steps) and steps[hi].parallel_group == group:
        hi += 1
    return range(lo, hi)


def _can_act_now(step: StepState) -> tuple[int, ...]:
    """Who may decide on an active step right now (for notifications)."""
    if step.pattern == "sequential":
        current = turn(step)
        if current is None:
            return ()
        return tuple(uid for uid in step.slots[current] if may_take_turn(step, uid))
    return tuple(uid for uid in step.eligible if uid not in step.decided)


def _advance(state: RequestState, after: int, now: datetime, events: list[Event]) -> RequestState:
    """Activate the next group of waiting steps after index ``after``, or approve the request."""
    steps = list(state.steps)
    nxt = next((i for i in range(after + 1, len(steps)) if steps[i].status == "waiting"), None)
    if nxt is None:
        events.append(event("request_approved", reason="steps_completed"))
        return replace(state, status="approved", steps=tuple(steps))
    for i in _group_run(steps, nxt):
        if steps[i].status != "waiting":
            continue
        due = _due(now, steps[i].sla_hours)
        steps[i] = replace(steps[i], status="active", activated_at=now, due_at=due)
        events.append(
            event(
                "step_activated",
                i,
                name=steps[i].name,
                approvers=_can_act_now(steps[i]),
                due_at=None if due is None else due.isoformat(),
            )
        )
    return replace(state, steps=tuple(steps))


def _close_active(
    state: RequestState, status: str, now: datetime | None, events: list[Event], kind: str
) -> RequestState:
    """Give every active step ``status`` (the request is ending for another reason)."""
    steps = list(state.steps)
    for i, step in enumerate(steps):
        if step.status == "active":
            steps[i] = replace(step, status=status, completed_at=now)
            events.append(event(kind, i, name=step.name))
    return replace(state, steps=tuple(steps))


def _submit(
    defn: WorkflowDefinition,
    *,
    requester_id: int,
    requester_roles: Collection[str],
    input_data: Mapping[str, Any],
    eligible_by_step: Sequence[EligibleInput],
    now: datetime,
    extra_steps: Sequence[StepDef],
    global_rules: Sequence[Rule],
    context: Mapping[str, Any] | None,
    version: int,
    events: list[Event],
    related_ids: frozenset[int] = frozenset(),
) -> Transition:
    all_steps = [*defn.steps, *extra_steps]
    if len(eligible_by_step) != len(all_steps):
        raise ValueError(
            f"{len(eligible_by_step)} eligible sets for {len(all_steps)} steps "
            "(definition steps followed by extra_steps)"
        )
    if isinstance(requester_id, bool) or not isinstance(requester_id, int):
        raise ValueError(f"requester_id must be an integer, got {requester_id!r}")
    if context is None:
        context = make_context(
            defn.key, input_data, requester_id=requester_id, requester_roles=requester_roles
        )
    amount = to_decimal(input_data.get(AMOUNT_FIELD))
    events.append(event("request_submitted", workflow=defn.key, steps=len(all_steps)))
    auto = _auto_approve_reason(defn, requester_roles, amount, context, global_rules)
    steps = tuple(
        _build_step(
            i,
            step,
            eligible_by_step[i],
            requester_id,
            "request_auto_approved" if auto else _skip_reason(step, amount, context),
            enforce=auto is None,
            related_ids=related_ids,
        )
        for i, step in enumerate(all_steps)
    )
    state = RequestState(
        status="pending",
        requester_id=requester_id,
        steps=steps,
        version=version,
        related_ids=related_ids,
    )
    if auto is not None:
        events.append(event("request_approved", reason="auto_approve", detail=auto))
        return Transition(replace(state, status="approved"), tuple(events))
    for step in steps:
        if step.status == "skipped":
            events.append(
                event("step_skipped", step.index, name=step.name, reason=step.skip_reason)
            )
    state = _advance(state, -1, now, events)
    return Transition(state, tuple(events))


# --------------------------------------------------------------------------- public API


def start(
    defn: WorkflowDefinition,
    *,
    requester_id: int,
    requester_roles: Collection[str],
    input_data: Mapping[str, Any],
    eligible_by_step: Sequence[EligibleInput],
    now: datetime,
    extra_steps: Sequence[StepDef] = (),
    global_rules: Sequence[Rule] = (),
    context: Mapping[str, Any] | None = None,
    related_ids: Collection[int] = (),
) -> Transition:
    """Submit a request: auto-approve it, or skip steps and activate the first group.

    ``related_ids``: users the request's subject names (its owner, its author...):
    like the requester, they are never eligible and can never decide on it.

    ``eligible_by_step`` has one entry per step of ``defn.steps`` followed by
    ``extra_steps`` (from :func:`extra_steps_for_rules`). ``context`` (default: built from
    the arguments) is what ``skip_if`` conditions and rules see; pass the one used for
    ``extra_steps_for_rules`` so both agree. Refuses ``no_eligible_approver`` /
    ``not_enough_approvers`` for a step that is not skipped and could never complete.
    """
    return _submit(
        defn,
        requester_id=requester_id,
        requester_roles=requester_roles,
        input_data=input_data,
        eligible_by_step=eligible_by_step,
        now=now,
        extra_steps=extra_steps,
        global_rules=global_rules,
        context=context,
        version=1,
        events=[],
        related_ids=frozenset(int(u) for u in related_ids),
    )


def decide(
    state: RequestState,
    *,
    actor_id: int,
    on_behalf_of_id: int | None = None,
    step_index: int,
    verdict: str,
    now: datetime,
    mfa_fresh: bool,
) -> Transition:
    """Record one verdict on an active step and apply its consequences.

    The principal (``on_behalf_of_id`` or else ``actor_id``) must be eligible and counts
    with their own weight; the action layer has already checked that a delegation from
    the principal to the actor exists. ``request_changes`` sends the whole request back
    to the requester (``changes_requested``); :func:`resubmit` restarts it.
    """
    if on_behalf_of_id == actor_id:
        on_behalf_of_id = None
    principal = actor_id if on_behalf_of_id is None else on_behalf_of_id
    if state.status != "pending":
        raise Refusal("not_pending", N_("the request is %(status)s", status=state.status))
    deciders = {actor_id, on_behalf_of_id}
    if state.requester_id in deciders or deciders & state.related_ids:
        raise Refusal("self_approval", step=step_index)
    if verdict not in VERDICTS:
        raise Refusal("invalid_verdict", step=step_index)
    if not 0 <= step_index < len(state.steps) or state.steps[step_index].status != "active":
        raise Refusal("step_not_active", step=step_index)
    step = state.steps[step_index]
    if on_behalf_of_id is not None and not step.allow_delegation:
        raise Refusal("delegation_not_allowed", step=step_index)
    if principal not in step.eligible:
        raise Refusal("not_eligible", step=step_index)
    if principal in step.decided:
        raise Refusal("already_decided", step=step_index)
    if step.pattern == "sequential" and not may_take_turn(step, principal):
        raise Refusal("out_of_turn", step=step_index)
    if step.requires_mfa and not mfa_fresh:
        raise Refusal("mfa_required", step=step_index)

    decision = Decision(actor_id, on_behalf_of_id, verdict, now, step.eligible[principal])
    step = replace(step, decisions=(*step.decisions, decision))
    state = replace(state.with_step(step), version=state.version + 1)
    events: list[Event] = [
        event(
            "decision_recorded",
            step_index,
            actor_id=actor_id,
            on_behalf_of_id=on_behalf_of_id,
            verdict=verdict,
            weight=decision.weight,
        )
    ]
    if verdict == "request_changes":
        events.append(event("changes_requested", step_index, by=principal))
        return Transition(replace(state, status="changes_requested"), tuple(events))

    result = outcome(step)
    if result is None:
        if step.pattern == "sequential":
            events.append(event("turn_passed", step_index, approvers=_can_act_now(step)))
        return Transition(state, tuple(events))
    step = replace(step, status=result, completed_at=now)
    state = state.with_step(step)
    if result == "rejected":
        events.append(event("step_rejected", step_index, name=step.name))
        state = _close_active(state, "cancelled", now, events, "step_cancelled")
        events.append(event("request_rejected", step=step_index))
        return Transition(replace(state, status="rejected"), tuple(events))
    events.append(event("step_completed", step_index, name=step.name))
    run = _group_run(state.steps, step_index)
    if all(state.steps[i].is_done for i in run):
        state = _advance(state, run[-1], now, events)
    return Transition(state, tuple(events))


def withdraw(state: RequestState, *, actor_id: int, now: datetime | None = None) -> Transition:
    """The requester takes back a pending (or sent-back) request; active steps are cancelled."""
    if state.status not in ACTIVE_REQUEST_STATUSES:
        raise Refusal("not_pending", N_("the request is %(status)s", status=state.status))
    if actor_id != state.requester_id:
        raise Refusal("not_requester")
    events: list[Event] = []
    state = _close_active(state, "cancelled", now, events, "step_cancelled")
    events.append(event("request_withdrawn", by=actor_id))
    return Transition(replace(state, status="withdrawn", version=state.version + 1), tuple(events))


def resubmit(
    state: RequestState,
    defn: WorkflowDefinition,
    *,
    actor_id: int,
    eligible_by_step: Sequence[EligibleInput],
    input_data: Mapping[str, Any],
    now: datetime,
    requester_roles: Collection[str] = (),
    extra_steps: Sequence[StepDef] = (),
    global_rules: Sequence[Rule] = (),
    context: Mapping[str, Any] | None = None,
) -> Transition:
    """Restart a ``changes_requested`` request from its first step with fresh decisions.

    Earlier decisions live on in the audit trail, not in the new state; auto-approval,
    skips and rules are evaluated again against the new ``input_data``.
    """
    if state.status != "changes_requested":
        raise Refusal("not_changes_requested", N_("the request is %(status)s", status=state.status))
    if actor_id != state.requester_id:
        raise Refusal("not_requester")
    return _submit(
        defn,
        requester_id=state.requester_id,
        requester_roles=requester_roles,
        input_data=input_data,
        eligible_by_step=eligible_by_step,
        now=now,
        extra_steps=extra_steps,
        global_rules=global_rules,
        context=context,
        version=state.version + 1,
        events=[event("request_resubmitted", by=actor_id)],
        related_ids=state.related_ids,
    )


def escalate(
    state: RequestState,
    *,
    step_index: int,
    add_eligible: Mapping[int, int],
    now: datetime,
) -> Transition:
    """Add escalation targets to an active step and mark it escalated.

    Targets join the eligible set with their weight (a sequential step: the current turn;
    a parallel step: every slot). The step's target (``need``) does not move, so a target
    can stand in for a silent approver. The SLA clock restarts for the target.
    """
    if state.status != "pending":
        raise Refusal("not_pending", N_("the request is %(status)s", status=state.status))
    if not 0 <= step_index < len(state.steps) or state.steps[step_index].status != "active":
        raise Refusal("step_not_active", step=step_index)
    step = state.steps[step_index]
    added = {
        uid: w
        for uid, w in _weights(add_eligible, "add_eligible").items()
        if uid != state.requester_id and uid not in state.related_ids
    }
    if not added:
        raise Refusal(
            "no_eligible_approver", "no escalation target other than the requester", step_index
        )
    eligible = dict(step.eligible)
    for uid, weight in added.items():
        eligible.setdefault(uid, weight)
    slots = list(step.slots)
    if step.pattern == "sequential":
        current = turn(step)
        if current is not None:
            slots[current] = (*slots[current], *(u for u in added if u not in slots[current]))
    elif step.pattern == "parallel":
        slots = [(*slot, *(u for u in added if u not in slot)) for slot in slots]
    due = _due(now, step.sla_hours)
    step = replace(
        step,
        eligible=FrozenDict(eligible),
        slots=tuple(slots),
        escalated=True,
        due_at=due if due is not None else step.due_at,
    )
    new = replace(state.with_step(step), version=state.version + 1)
    ev = event("escalated", step_index, added=tuple(added), approvers=_can_act_now(step))
    return Transition(new, (ev,))


def expire(state: RequestState, now: datetime) -> Transition:
    """End a pending or sent-back request that ran out of time; active steps expire."""
    if state.status not in ACTIVE_REQUEST_STATUSES:
        raise Refusal("not_pending", N_("the request is %(status)s", status=state.status))
    events: list[Event] = []
    state = _close_active(state, "expired", now, events, "step_expired")
    events.append(event("request_expired"))
    return Transition(replace(state, status="expired", version=state.version + 1), tuple(events))


def overdue_steps(state: RequestState, now: datetime) -> tuple[int, ...]:
    """Active steps whose SLA has passed. A job escalates each one that has ``escalate_to``
    and is not yet escalated, and expires the request otherwise."""
    if state.status != "pending":
        return ()
    return tuple(
        s.index
        for s in state.steps
        if s.status == "active" and s.due_at is not None and now >= s.due_at
    )
