"""Progress and due date of a request (the specification's ``get_progress_percentage``,
``due_date`` and ``is_overdue``), computed from what is stored: no column of its own.

- ``progress``: the percentage (0-100, rounded down) of the request's steps that are
  done (approved or skipped); an approved request is 100.
- ``due_at``: ``submitted_at`` + the pinned workflow version's ``expire_after_hours``
  (``None`` when the workflow sets none). The SLA sweep expires the request then.
- ``overdue``: the request is still open (pending or changes requested) and its
  ``due_at`` has passed, or one of its active steps is past its SLA (``due_at``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from signoff.workflow.engine import RequestState, state_from_dict

OPEN_STATUSES = ("pending", "changes_requested")


@dataclass(frozen=True)
class Progress:
    progress: int
    steps_done: int
    steps_total: int
    due_at: datetime | None
    overdue: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "progress": self.progress,
            "steps_done": self.steps_done,
            "steps_total": self.steps_total,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "overdue": self.overdue,
        }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def progress_of(
    status: str,
    state: RequestState | Mapping[str, Any],
    submitted_at: datetime,
    definition: Mapping[str, Any] | None,
    *,
    now: datetime | None = None,
) -> Progress:
    """Progress of one request; ``definition`` is its pinned version's raw definition."""
    st = state if isinstance(state, RequestState) else state_from_dict(state)
    now = now or datetime.now(UTC)
    total = len(st.steps)
    done = sum(1 for s in st.steps if s.is_done)
    if status == "approved" or total == 0:
        percent = 100 if status == "approved" else 0
    else:
        percent = done * 100 // total
    hours = (definition or {}).get("expire_after_hours")
    due_at = (
        _aware(submitted_at) + timedelta(hours=int(hours))
        if isinstance(hours, int) and not isinstance(hours, bool) and hours > 0
        else None
    )
    overdue = status in OPEN_STATUSES and (
        (due_at is not None and now > due_at)
        or any(
            s.status == "active" and s.due_at is not None and now > _aware(s.due_at)
            for s in st.steps
        )
    )
    return Progress(percent, done, total, due_at, overdue)
