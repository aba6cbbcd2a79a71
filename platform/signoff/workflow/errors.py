"""Validation errors shared by the definition parser, the rule parser and input validation.

They live in their own module so that :mod:`.rules` (a lower layer) and :mod:`.definitions`
(which embeds rules) can both raise them without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem at one place: ``path`` is like ``steps[1].quorum`` or ``input_data.amount``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ValidationError(ValueError):
    """Every problem found in one document, not just the first one."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors) or "invalid")

    def as_dict(self) -> dict[str, list[str]]:
        """Messages grouped by path, the shape API error bodies and forms want."""
        out: dict[str, list[str]] = {}
        for err in self.errors:
            out.setdefault(err.path, []).append(err.message)
        return out


class DefinitionError(ValidationError):
    """A workflow definition or rule is invalid (raised at save/load time)."""


class InputError(ValidationError):
    """A request's ``input_data`` does not match the workflow's field schema."""
