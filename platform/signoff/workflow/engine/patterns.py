"""Approval-pattern arithmetic: when a step is approved, rejected, or still open.

Every pattern reduces to a target ``need`` fixed when the request is submitted
(see :func:`initial_need`) and one rule for rejections:

========================  =====================================  ============================
pattern                   approved when                          rejected when
========================  =====================================  ============================
first_response            the first decision is an approval      the first decision is a reject
sequential                every slot, in order, has an approval  any reject (veto)
parallel                  distinct approvers cover every slot    any reject (veto)
unanimous                 approvals >= number eligible           any reject (veto)
majority                  approvals > half of eligible           approvals + undecided < need
quorum                    approvals >= N or ceil(pct x eligible) approvals + undecided < need
weighted                  approving weight >= threshold          approving + undecided weight
                                                                 < threshold
========================  =====================================  ============================

``need`` is computed from the eligible set at submission, so adding an escalation target
later lets that person stand in for a silent approver instead of raising the bar.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from signoff.workflow.definitions import quorum_need
from signoff.workflow.engine.state import StepState

__all__ = ["initial_need", "max_matching", "may_take_turn", "outcome", "turn"]

#: Patterns in which one reject rejects the step.
VETO_PATTERNS = frozenset({"first_response", "sequential", "parallel", "unanimous"})


def max_matching(slots: Sequence[Collection[int]], people: Collection[int]) -> int:
    """How many slots distinct ``people`` can fill at once (bipartite matching, Kuhn)."""
    pool = set(people)
    candidates = [sorted(pool.intersection(slot)) for slot in slots]
    holder: dict[int, int] = {}  # person -> slot they fill

    def assign(slot: int, seen: set[int]) -> bool:
        for person in candidates[slot]:
            if person in seen:
                continue
            seen.add(person)
            if person not in holder or assign(holder[person], seen):
                holder[person] = slot
                return True
        return False

    return sum(1 for slot in range(len(slots)) if assign(slot, set()))


def initial_need(
    pattern: str,
    eligible: Mapping[int, int],
    slots: Sequence[Collection[int]],
    *,
    quorum: int | str | None,
    threshold: int | None,
) -> int:
    """The target a step must reach, computed once from its eligible set."""
    if pattern in ("sequential", "parallel"):
        return len(slots)
    if pattern == "first_response":
        return 1
    if pattern == "unanimous":
        return len(eligible)
    if pattern == "majority":
        return len(eligible) // 2 + 1
    if pattern == "quorum":
        if quorum is None:
            raise ValueError("quorum pattern without quorum")
        return quorum_need(quorum, len(eligible))
    if pattern == "weighted":
        if threshold is None:
            raise ValueError("weighted pattern without threshold")
        return threshold
    raise ValueError(f"unknown pattern {pattern!r}")


def reachable(
    pattern: str, eligible: Mapping[int, int], slots: Sequence[Collection[int]], need: int
) -> bool:
    """Whether a step could complete if every eligible person approved."""
    if pattern in ("sequential", "parallel"):
        return max_matching(slots, eligible.keys()) == len(slots)
    if pattern == "weighted":
        return sum(eligible.values()) >= need
    return len(eligible) >= need


def turn(step: StepState) -> int | None:
    """Index of the slot whose turn it is in a sequential step (None when all are filled)."""
    filled = sum(1 for d in step.decisions if d.verdict == "approve")
    return filled if filled < len(step.slots) else None


def may_take_turn(step: StepState, principal: int) -> bool:
    """Whether ``principal`` may fill the current sequential slot now.

    They must belong to it, and taking it must leave enough distinct undecided people for
    the later slots (a person named in two slots cannot fill both).
    """
    current = turn(step)
    if current is None or principal not in step.slots[current]:
        return False
    undecided = set(step.eligible) - step.decided - {principal}
    later = step.slots[current + 1 :]
    return max_matching(later, undecided) == len(later)


def outcome(step: StepState) -> str | None:
    """``"approved"``, ``"rejected"`` or None (still open) for an active step's decisions."""
    approvals = [d for d in step.decisions if d.verdict == "approve"]
    rejected = any(d.verdict == "reject" for d in step.decisions)
    pattern, need = step.pattern, step.need
    if pattern == "first_response":
        if step.decisions:
            return "approved" if step.decisions[0].verdict == "approve" else "rejected"
        return None
    if pattern in VETO_PATTERNS and rejected:
        return "rejected"
    if pattern == "sequential":
        return "approved" if len(approvals) >= len(step.slots) else None
    if pattern == "parallel":
        covered = max_matching(step.slots, {d.principal for d in approvals})
        return "approved" if covered == len(step.slots) else None
    undecided = [uid for uid in step.eligible if uid not in step.decided]
    if pattern == "weighted":
        have = sum(d.weight for d in approvals)
        possible = have + sum(step.eligible[uid] for uid in undecided)
    else:  # unanimous, majority, quorum count heads
        have = len(approvals)
        possible = have + len(undecided)
    if have >= need:
        return "approved"
    if possible < need:
        return "rejected"
    return None
