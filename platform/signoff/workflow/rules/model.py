"""The parsed form of rules and conditions: frozen dataclasses and the language's vocabulary.

Nothing here runs anything. :mod:`.evaluate` interprets these conditions, and
:class:`~signoff.workflow.rules.rule.Rule` lives in :mod:`.rule`, above the interpreter,
because :meth:`Rule.matches` runs it: model, then evaluate, then rule, with no circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

OPERATORS: Final = (">", ">=", "<", "<=", "==", "!=", "in", "not_in", "contains")
ORDERING: Final = frozenset({">", ">=", "<", "<="})
#: Top-level names a condition may start from; see :func:`.evaluate.make_context`.
ROOTS: Final = ("input_data", "requester", "workflow")
MATCH_MODES: Final = ("all", "any")
ACTIONS: Final = ("add_approvers", "auto_approve")
RULE_APPROVER_KINDS: Final = ("role", "user", "manager")

#: Limits that keep a hostile or accidental rule from costing more than a few microseconds.
MAX_DEPTH: Final = 8
MAX_NODES: Final = 200
MAX_LIST: Final = 500
MAX_STRING: Final = 1000

Scalar: TypeAlias = bool | int | float | str | None
Value: TypeAlias = Scalar | tuple[Scalar, ...]


@dataclass(frozen=True)
class Compare:
    """A leaf: ``field operator value``; ``value`` is a tuple for ``in``/``not_in``."""

    field: str
    operator: str
    value: Value


@dataclass(frozen=True)
class AllOf:
    """True when every sub-condition is true."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """True when at least one sub-condition is true."""

    conditions: tuple[Condition, ...]


Condition: TypeAlias = Compare | AllOf | AnyOf


@dataclass(frozen=True)
class RuleApprover:
    """An approver a rule adds: ``kind`` role/user/manager; optional ones do not gate."""

    kind: str
    value: str | None = None
    required: bool = True
