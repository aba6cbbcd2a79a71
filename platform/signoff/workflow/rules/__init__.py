"""The rule language of ``FAB_APPROVAL_RULES``: parsed once, then run by a tiny interpreter.

A rule is ``{name, priority, conditions, match, approvers, action}``. Conditions are
``{field, operator, value}`` leaves or ``{all: [...]}`` / ``{any: [...]}`` nodes. Nothing is
ever ``eval``-ed: :func:`parse_rule` turns the raw structure into frozen dataclasses (and
rejects anything it does not understand, at save time), and :func:`evaluate` walks them.

Semantics, chosen so that rules behave the same whether data arrives as JSON, form strings
or Python objects:

* ``field`` is a dotted path into the context (see :func:`make_context`): ``input_data.amount``,
  ``requester.roles``, ``workflow``. A path that does not resolve makes the condition false
  (every operator, ``!=`` and ``not_in`` included): missing data never matches.
* Numbers are compared exactly as :class:`~decimal.Decimal`: ints, Decimals, floats (by their
  shortest repr, so ``0.1`` means 0.1) and numeric strings such as ``"5000.00"`` (what
  :func:`~signoff.workflow.definitions.validate_input` produces) are all numbers.
* ``>``, ``>=``, ``<``, ``<=`` compare two numbers, or two non-numeric strings (ISO dates order
  correctly); any other mix is false. ``==``/``!=`` compare numbers numerically and everything
  else by type and value (``True`` is not ``1``). ``in``/``not_in`` take a list. ``contains``
  asks whether a list field holds the value, or a string field contains a string value.

Layout: :mod:`.model` (frozen dataclasses and vocabulary), :mod:`.evaluate` (the
interpreter), :mod:`.rule` (:class:`Rule` and :func:`matching_rules`), :mod:`.parse`
(validation), :mod:`.export` (back to the raw format). They import one another
directly, never this package's re-exports, so there is no circle.
"""

from signoff.workflow.errors import DefinitionError, FieldError
from signoff.workflow.rules.evaluate import (
    evaluate,
    make_context,
    referenced_fields,
    to_decimal,
)
from signoff.workflow.rules.export import condition_to_dict, rule_to_dict
from signoff.workflow.rules.model import (
    ACTIONS,
    MATCH_MODES,
    MAX_DEPTH,
    MAX_LIST,
    MAX_NODES,
    MAX_STRING,
    OPERATORS,
    ORDERING,
    ROOTS,
    RULE_APPROVER_KINDS,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    RuleApprover,
    Scalar,
    Value,
)
from signoff.workflow.rules.parse import (
    parse_condition,
    parse_condition_into,
    parse_rule,
    parse_rule_into,
    parse_rules,
    parse_rules_into,
)
from signoff.workflow.rules.rule import Rule, matching_rules

__all__ = [
    "ACTIONS",
    "MATCH_MODES",
    "MAX_DEPTH",
    "MAX_LIST",
    "MAX_NODES",
    "MAX_STRING",
    "OPERATORS",
    "ORDERING",
    "ROOTS",
    "RULE_APPROVER_KINDS",
    "AllOf",
    "AnyOf",
    "Compare",
    "Condition",
    "DefinitionError",
    "FieldError",
    "Rule",
    "RuleApprover",
    "Scalar",
    "Value",
    "condition_to_dict",
    "evaluate",
    "make_context",
    "matching_rules",
    "parse_condition",
    "parse_condition_into",
    "parse_rule",
    "parse_rule_into",
    "parse_rules",
    "parse_rules_into",
    "referenced_fields",
    "rule_to_dict",
    "to_decimal",
]
