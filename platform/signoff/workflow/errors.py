"""Validation errors shared by the definition parser, the rule parser and input validation.

They live in their own module so that :mod:`.rules` (a lower layer) and :mod:`.definitions`
(which embeds rules) can both raise them without importing each other.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from signoff.errors import N_


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


class DefinitionWarnings(ValidationError):
    """A valid definition that will not work with the tenant's people as they are today
    (a role with no members, a quorum larger than the approvers): saved only once the
    admin confirms (``confirm_warnings``)."""


class InputError(ValidationError):
    """A request's ``input_data`` does not match the workflow's field schema."""


def join_path(base: str, key: str | int) -> str:
    """Extend an error path: ``steps`` + 1 is ``steps[1]``; ``steps[1]`` + ``quorum`` is
    ``steps[1].quorum``."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


def check_keys(
    raw: Mapping[Any, Any], allowed: Collection[str], path: str, errors: list[FieldError]
) -> None:
    """Report every key of ``raw`` not in ``allowed`` (typo protection), with a suggestion."""
    for key in raw:
        if not isinstance(key, str):
            errors.append(FieldError(path, N_("keys must be strings, got %(key)s", key=repr(key))))
            continue
        if key in allowed:
            continue
        close = difflib.get_close_matches(key, list(allowed), n=1)
        message = (
            N_("unknown key %(key)s; did you mean %(close)s?", key=repr(key), close=repr(close[0]))
            if close
            else N_(
                "unknown key %(key)s; expected one of %(known)s",
                key=repr(key),
                known=_listing(allowed),
            )
        )
        errors.append(FieldError(join_path(path, key), message))


def _listing(names: Collection[str]) -> str:
    return ", ".join(sorted(names))
