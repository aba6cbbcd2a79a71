"""Workflow definitions: the ``FAB_APPROVAL_WORKFLOWS`` format, its validation and export.

:func:`parse_definition` accepts the specification's entries exactly as written (a step with
only ``required_role: X`` is a sequential step approved by anyone holding role X) plus the
extensions documented on :class:`StepDef`. Unknown keys are errors, and every problem is
reported at once as a :class:`DefinitionError` whose :class:`FieldError` paths look like
``steps[1].quorum``. :func:`definition_to_dict` is the inverse (``parse_definition(key,
definition_to_dict(d)) == d``), and :func:`validate_input` checks a request's ``input_data``
against the definition's ``fields``.

Amount thresholds (``auto_approve_conditions.amount_threshold`` and a step's
``auto_approve_threshold``) read ``input_data.amount`` and apply when it is *at or below* the
threshold. Nothing here does I/O.

Layout: :mod:`.model` (frozen dataclasses and vocabulary), :mod:`.parse` (validation),
:mod:`.export` (back to the raw format), :mod:`.inputs` (request input validation).
"""

from signoff.workflow.definitions.export import definition_to_dict
from signoff.workflow.definitions.inputs import validate_input
from signoff.workflow.definitions.model import (
    AMOUNT_FIELD,
    APPROVER_KINDS,
    FIELD_TYPES,
    PATTERNS,
    ApproverSpec,
    AutoApprove,
    FieldDef,
    StepDef,
    WorkflowDefinition,
    quorum_need,
)
from signoff.workflow.definitions.parse import (
    effective_definitions,
    parse_definition,
    parse_definitions,
)
from signoff.workflow.errors import DefinitionError, FieldError, InputError

__all__ = [
    "AMOUNT_FIELD",
    "APPROVER_KINDS",
    "FIELD_TYPES",
    "PATTERNS",
    "ApproverSpec",
    "AutoApprove",
    "DefinitionError",
    "FieldDef",
    "FieldError",
    "InputError",
    "StepDef",
    "WorkflowDefinition",
    "definition_to_dict",
    "effective_definitions",
    "parse_definition",
    "parse_definitions",
    "quorum_need",
    "validate_input",
]
