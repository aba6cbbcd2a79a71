"""A rule: conditions combined with ``match``, what it does when it applies, and which
rules apply to a context."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from signoff.workflow.rules.evaluate import evaluate
from signoff.workflow.rules.model import Condition, RuleApprover


@dataclass(frozen=True)
class Rule:
    """A parsed rule; ``conditions`` are combined with ``match`` (``all`` or ``any``)."""

    name: str
    conditions: tuple[Condition, ...]
    priority: int = 0
    match: str = "all"
    approvers: tuple[RuleApprover, ...] = ()
    action: str = "add_approvers"
    description: str = ""

    def matches(self, context: Mapping[str, Any]) -> bool:
        """Whether this rule applies to ``context``."""
        results = (evaluate(c, context) for c in self.conditions)
        return all(results) if self.match == "all" else any(results)


def matching_rules(rules: Iterable[Rule], context: Mapping[str, Any]) -> list[Rule]:
    """The rules that apply to ``context``, highest priority first, then by name."""
    return sorted((r for r in rules if r.matches(context)), key=lambda r: (-r.priority, r.name))
