"""The figures of the admin analytics dashboard and ``/api/v1/metrics/`` (issue 15
item 2), for the bound tenant under row-level security, over a chosen period.

The period is ``[since, until]`` in whole UTC days; a request belongs to it by its
``submitted_at``, a week of throughput by its own dates (submitted, completed).

- **Auto-approved** requests (approved with no human decision: an auto-approve rule
  or every step skipped) are counted apart and never enter approval times or rates:
  their ~0 s would pull every average and median down.
- **Approval time** of a request: ``completed_at - submitted_at`` of approved requests
  decided by people; of a step: ``completed_at - activated_at`` of approved steps.
  Median and 90th percentile (``percentile_cont``), in seconds.
- **SLA breaches**: steps with a due time that were completed after it, or are still
  active past it.
- **Slowest approvers**: median of ``decided_at - activated_at`` of their decisions.
- **Rejection rate**: rejected / (approved by people + rejected); **changes-requested
  rate**: requests with at least one "request changes" decision / requests with any
  human decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Float, and_, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from signoff.workflow.models import ApprovalRequest, ApprovalStep, StepDecision

DEFAULT_DAYS = 90
MAX_DAYS = 3 * 366
TOP = 5


@dataclass(frozen=True)
class Period:
    since: date
    until: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: the start of the day after ``until``."""
        return datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=UTC)


def parse_period(
    since: str | None, until: str | None, *, today: date | None = None
) -> tuple[Period | None, dict[str, str]]:
    """A period from ``YYYY-MM-DD`` strings (default: the last 90 days); errors by field."""
    errors: dict[str, str] = {}
    today = today or datetime.now(UTC).date()

    def day(raw: str | None, name: str) -> date | None:
        if not raw:
            return None
        try:
            value = date.fromisoformat(raw.strip())
        except ValueError:
            errors[name] = "must be a date written YYYY-MM-DD"
            return None
        if not 1900 <= value.year <= 2999:
            errors[name] = "must be a date between 1900 and 2999"
            return None
        return value

    end = day(until, "until") or today
    start = day(since, "since") or end - timedelta(days=DEFAULT_DAYS - 1)
    if errors:
        return None, errors
    if start > end:
        return None, {"until": "must be on or after since"}
    if (end - start).days + 1 > MAX_DAYS:
        return None, {"since": f"the period is at most {MAX_DAYS} days"}
    return Period(start, end), {}


def _seconds(expr: Any) -> Any:
    return cast(func.extract("epoch", expr), Float)


def _pct(fraction: float, expr: Any) -> Any:
    return func.percentile_cont(fraction).within_group(_seconds(expr))


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _human() -> Any:
    return exists().where(
        StepDecision.tenant_id == ApprovalRequest.tenant_id,
        StepDecision.request_id == ApprovalRequest.id,
    )


def _changes() -> Any:
    return exists().where(
        StepDecision.tenant_id == ApprovalRequest.tenant_id,
        StepDecision.request_id == ApprovalRequest.id,
        StepDecision.verdict == "request_changes",
    )


def analytics(session: Session, period: Period, *, now: datetime | None = None) -> dict[str, Any]:
    """Every figure of the dashboard for ``period``, as plain data (dates as ``date``)."""
    now = now or datetime.now(UTC)
    in_period = and_(
        ApprovalRequest.submitted_at >= period.start, ApprovalRequest.submitted_at < period.end
    )
    human = _human()
    auto = and_(ApprovalRequest.status == "approved", ~human)
    decided_approved = and_(ApprovalRequest.status == "approved", human)
    duration = ApprovalRequest.completed_at - ApprovalRequest.submitted_at

    per_workflow_rows = session.execute(
        select(
            ApprovalRequest.workflow_key,
            func.count().label("total"),
            func.count().filter(ApprovalRequest.status == "pending").label("pending"),
            func.count().filter(auto).label("auto"),
            func.count().filter(decided_approved).label("approved"),
            func.count().filter(ApprovalRequest.status == "rejected").label("rejected"),
            func.count().filter(human).label("human"),
            func.count().filter(_changes()).label("changes"),
            func.count().filter(ApprovalRequest.escalations > 0).label("escalated"),
            _pct(0.5, duration).filter(decided_approved).label("median"),
            _pct(0.9, duration).filter(decided_approved).label("p90"),
        )
        .where(in_period)
        .group_by(ApprovalRequest.workflow_key)
        .order_by(ApprovalRequest.workflow_key)
    ).all()
    overall = session.execute(
        select(
            _pct(0.5, duration).filter(decided_approved).label("median"),
            _pct(0.9, duration).filter(decided_approved).label("p90"),
        ).where(in_period)
    ).one()

    def rates(r: Any) -> dict[str, Any]:
        decided = r.approved + r.rejected
        return {
            "total": r.total,
            "pending": r.pending,
            "auto_approved": r.auto,
            "approved": r.approved,
            "rejected": r.rejected,
            "decided": decided,
            "escalated": r.escalated,
            "rejection_rate": _rate(r.rejected, decided),
            "changes_requested": r.changes,
            "changes_requested_rate": _rate(r.changes, r.human),
        }

    workflows = [
        {
            "workflow": r.workflow_key,
            **rates(r),
            "approval_time": {"median": _num(r.median), "p90": _num(r.p90)},
        }
        for r in per_workflow_rows
    ]
    totals = {
        key: sum(w[key] for w in workflows)
        for key in (
            "total",
            "pending",
            "auto_approved",
            "approved",
            "rejected",
            "decided",
            "escalated",
            "changes_requested",
        )
    }
    human_total = sum(r.human for r in per_workflow_rows)
    totals["rejection_rate"] = _rate(totals["rejected"], totals["decided"])
    totals["changes_requested_rate"] = _rate(totals["changes_requested"], human_total)
    totals["approval_time"] = {"median": _num(overall.median), "p90": _num(overall.p90)}

    # Steps of the period's requests.
    step_join = and_(
        ApprovalStep.tenant_id == ApprovalRequest.tenant_id,
        ApprovalStep.request_id == ApprovalRequest.id,
    )
    step_time = ApprovalStep.completed_at - ApprovalStep.activated_at
    timed = and_(
        ApprovalStep.status == "approved",
        ApprovalStep.activated_at.is_not(None),
        ApprovalStep.completed_at.is_not(None),
    )
    breached = and_(
        ApprovalStep.due_at.is_not(None),
        or_(
            ApprovalStep.completed_at > ApprovalStep.due_at,
            and_(ApprovalStep.status == "active", ApprovalStep.due_at < now),
        ),
    )
    step_rows = session.execute(
        select(
            ApprovalRequest.workflow_key,
            ApprovalStep.step_index,
            func.min(ApprovalStep.name).label("name"),
            func.count().filter(timed).label("timed"),
            _pct(0.5, step_time).filter(timed).label("median"),
            _pct(0.9, step_time).filter(timed).label("p90"),
            func.count().filter(breached).label("breaches"),
        )
        .join(ApprovalStep, step_join)
        .where(in_period)
        .group_by(ApprovalRequest.workflow_key, ApprovalStep.step_index)
        .order_by(ApprovalRequest.workflow_key, ApprovalStep.step_index)
    ).all()
    steps = [
        {
            "workflow": r.workflow_key,
            "step": r.step_index,
            "name": r.name,
            "approved": r.timed,
            "approval_time": {"median": _num(r.median), "p90": _num(r.p90)},
            "sla_breaches": r.breaches,
        }
        for r in step_rows
    ]
    slowest_steps = sorted(
        (s for s in steps if s["approval_time"]["median"] is not None),
        key=lambda s: (-s["approval_time"]["median"], s["workflow"], s["step"]),
    )[:TOP]

    # Approvers: how long each took to decide, from the step's activation.
    wait = StepDecision.decided_at - ApprovalStep.activated_at
    approver_rows = session.execute(
        select(
            StepDecision.actor_id,
            func.count().label("decisions"),
            _pct(0.5, wait).label("median"),
        )
        .join(
            ApprovalStep,
            and_(
                ApprovalStep.tenant_id == StepDecision.tenant_id,
                ApprovalStep.request_id == StepDecision.request_id,
                ApprovalStep.step_index == StepDecision.step_index,
            ),
        )
        .join(
            ApprovalRequest,
            and_(
                ApprovalRequest.tenant_id == StepDecision.tenant_id,
                ApprovalRequest.id == StepDecision.request_id,
            ),
        )
        .where(
            in_period,
            StepDecision.actor_id > 0,
            ApprovalStep.activated_at.is_not(None),
            StepDecision.decided_at >= ApprovalStep.activated_at,
        )
        .group_by(StepDecision.actor_id)
        .order_by(_pct(0.5, wait).desc(), StepDecision.actor_id)
        .limit(TOP)
    ).all()
    slowest_approvers = [
        {"user_id": int(r.actor_id), "decisions": r.decisions, "median": _num(r.median)}
        for r in approver_rows
    ]

    # Throughput per ISO week (Monday), submitted and completed in the period.
    week_sub = func.date_trunc("week", func.timezone("UTC", ApprovalRequest.submitted_at))
    week_done = func.date_trunc("week", func.timezone("UTC", ApprovalRequest.completed_at))
    submitted: dict[Any, int] = dict(
        session.execute(select(week_sub, func.count()).where(in_period).group_by(week_sub)).all()
    )
    completed_by_status = session.execute(
        select(week_done, ApprovalRequest.status, func.count())
        .where(
            ApprovalRequest.completed_at >= period.start,
            ApprovalRequest.completed_at < period.end,
        )
        .group_by(week_done, ApprovalRequest.status)
    ).all()
    completed: dict[Any, int] = {}
    for week, _status, n in completed_by_status:
        completed[week] = completed.get(week, 0) + n
    first = period.since - timedelta(days=period.since.weekday())
    weeks = []
    cursor = first
    while cursor <= period.until:
        key = datetime.combine(cursor, time.min)
        weeks.append(
            {
                "week": cursor,
                "submitted": int(submitted.get(key, 0)),
                "completed": int(completed.get(key, 0)),
            }
        )
        cursor += timedelta(days=7)

    breaches = sum(s["sla_breaches"] for s in steps)
    return {
        "period": {"since": period.since, "until": period.until},
        "totals": {**totals, "sla_breaches": breaches},
        "workflows": workflows,
        "steps": steps,
        "slowest_steps": slowest_steps,
        "slowest_approvers": slowest_approvers,
        "throughput": weeks,
    }
