"""The pure approval engine: state machine, approval patterns, rule-added steps.

No I/O and no clock: the action layer loads a :class:`RequestState` (``state_from_dict``),
resolves approvers to ``{user_id: weight}`` mappings, passes ``now``, and writes the
returned :class:`Transition`'s state and events (audit rows, notifications) itself.

Eligibility. For each step the action layer passes either one mapping or, for sequential
and parallel steps, one mapping per approver entry (a list, in the step's order). The
requester is removed from every set; a step (or a slot) left empty is refused
``no_eligible_approver`` at submission unless the step is skipped, and a step whose
approvers can never reach its target is refused ``not_enough_approvers``. The sets are a
snapshot taken at submission; only :func:`escalate` changes them later.

Patterns (see :mod:`.patterns` for the arithmetic):

* sequential -- with one approver entry (typically ``required_role``) anyone eligible
  decides and the first approval completes the step. With several entries (an ordered
  list of users) each entry is a *slot* filled in order: only someone in the current slot
  may act (others get ``out_of_turn``); a reject anywhere in the chain rejects the step.
* parallel -- each approver entry is a slot; the step completes when distinct approvers
  cover every slot (one person never fills two), in any order. Any reject vetoes.
* first_response -- the first decision decides, approve or reject.
* unanimous / majority / quorum / weighted -- counted over the eligible set, see
  :mod:`.patterns`.

Parallel groups: consecutive steps with the same ``parallel_group`` are active together;
the next step or group starts when all of them are approved or skipped, and one rejected
step rejects the request (its still-active siblings become ``cancelled``).

Changes requested: any eligible approver's ``request_changes`` moves the request to
``changes_requested`` (steps keep their decisions for display); :func:`resubmit` by the
requester restarts the chain from the first step with fresh decisions and new input.

Rule-added approvers: :func:`extra_steps_for_rules` turns each matching ``add_approvers``
rule into one extra step appended after the definition's steps (``rule:<name>``,
unanimous over its required approvers, or first_response over its optional ones).
"""

from signoff.workflow.engine.machine import (
    STATUS_WORDS,
    EligibleInput,
    decide,
    escalate,
    expire,
    extra_steps_for_rules,
    overdue_steps,
    resubmit,
    start,
    status_words,
    step_label,
    withdraw,
)
from signoff.workflow.engine.patterns import initial_need, max_matching, outcome
from signoff.workflow.engine.state import (
    ACTIVE_REQUEST_STATUSES,
    REFUSAL_CODES,
    REQUEST_STATUSES,
    STEP_STATUSES,
    TERMINAL_REQUEST_STATUSES,
    VERDICTS,
    Decision,
    Event,
    FrozenDict,
    Refusal,
    RequestState,
    StepState,
    Transition,
    state_from_dict,
    state_to_dict,
)

__all__ = [
    "ACTIVE_REQUEST_STATUSES",
    "REFUSAL_CODES",
    "REQUEST_STATUSES",
    "STATUS_WORDS",
    "STEP_STATUSES",
    "TERMINAL_REQUEST_STATUSES",
    "VERDICTS",
    "Decision",
    "EligibleInput",
    "Event",
    "FrozenDict",
    "Refusal",
    "RequestState",
    "StepState",
    "Transition",
    "decide",
    "escalate",
    "expire",
    "extra_steps_for_rules",
    "initial_need",
    "max_matching",
    "outcome",
    "overdue_steps",
    "resubmit",
    "start",
    "state_from_dict",
    "state_to_dict",
    "status_words",
    "step_label",
    "withdraw",
]
