"""Every request of the bound tenant, for its admins: filters, full-text search,
sorting, keyset pages and CSV rows (issue 15 item 1).

All reads run under row-level security like every other query: a tenant sees only
its own rows, whatever the filters say. Full-text search uses PostgreSQL's
``tsvector`` over the title and the string and number values of the input fields,
stored as ``approval_request.search_vector`` with a GIN index (migration 0033).

Under row-level security the planner cannot use that index for ``@@`` (the operator
is not leakproof, so it may not run before the tenant policy), so a search first
asks ``signoff.request_search`` (SECURITY DEFINER; it applies the bound tenant
itself) for up to ``SPARSE + 1`` matching ids through the index:

- at most ``SPARSE`` (a rare word): the page reads those rows by id, under RLS;
- more (a common word): matches are dense, so the page walks the sort order's
  index and tests each row's stored ``search_vector`` (a few rows per match). The
  count is then "1,000+" without a query when the search is the only filter, and
  stops at ``SEARCH_COUNT_CAP`` when other filters narrow it.

The approver filter (who may decide, or decided) works the same way: the GIN index
of ``approval_step.open_approvers`` is out of the app role's reach too (``@>`` is not
leakproof), so ``signoff.requests_open_to`` (SECURITY DEFINER, migration 0044) returns
up to ``SPARSE + 1`` ids of requests with an active step open to the person, and the
page adds the requests they decided (``step_decision`` by actor or principal, plain
btree indexes). At most ``SPARSE`` ids: read by id; more: the page walks its sort
order and probes ``ix_approval_step_active`` and the decisions per request.

Pages are keyset pages (``after`` = the last row's sort value and id) on indexes led
by ``tenant_id`` for every sort (migrations 0031 and 0044), so page 1,000 costs what
page 1 costs. Counts stop at ``COUNT_CAP`` ("1,000+"): a capped count reads at most
that many matches, an exact one would read every match. No count query runs when
the first page holds every match, or when a search or the approver is the only
filter (its look-up counted already).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from signoff.workflow.models import (
    REQUEST_STATUS_CHECK,
    ApprovalRequest,
    ApprovalStep,
    StepDecision,
)

#: The stored words of a request (a generated column with a GIN index, migration 0033).
SEARCH_VECTOR: ColumnElement[Any] = literal_column("approval_request.search_vector")
STATUSES = tuple(
    s.strip(" '") for s in REQUEST_STATUS_CHECK.split("(", 1)[1].rstrip(")").split(",")
)
#: sort name -> (column, descending)
SORTS: dict[str, tuple[Any, bool]] = {
    "-submitted": (ApprovalRequest.submitted_at, True),
    "submitted": (ApprovalRequest.submitted_at, False),
    "-updated": (ApprovalRequest.updated_at, True),
    "updated": (ApprovalRequest.updated_at, False),
    "title": (ApprovalRequest.title, False),
    "-title": (ApprovalRequest.title, True),
}
DEFAULT_SORT = "-submitted"
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
#: Counts stop here ("1,000+"): an exact count of every match would read them all (at
#: 10,000 the capped count of a common filter alone cost 25 to 100 ms at 100,000 requests).
COUNT_CAP = 1_000
#: A search or an approver matching at most this many requests reads them by id (see
#: the module docstring).
SPARSE = 1_000
#: The count of a common word combined with other filters stops here ("200+"): each
#: row it reads has its stored words tested, and a word in one request of six with a
#: status of three in eight read 16,000 rows to find 1,000 (25 to 60 ms).
SEARCH_COUNT_CAP = 200
MAX_QUERY = 200


@dataclass(frozen=True)
class RequestFilter:
    workflow: str | None = None
    status: str | None = None
    requester: int | None = None
    approver: int | None = None
    since: date | None = None
    until: date | None = None
    overdue: bool = False
    q: str | None = None
    sort: str = DEFAULT_SORT
    page_size: int = PAGE_SIZE
    after: tuple[Any, uuid.UUID] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    #: Only these workflows (an auditor's); None = every workflow. Not a query argument.
    scope: tuple[str, ...] | None = None

    def args(self, **changes: Any) -> dict[str, str]:
        """The filter as query-string arguments (for links), with ``changes``."""
        values: dict[str, Any] = {
            "workflow": self.workflow,
            "status": self.status,
            "requester": self.requester,
            "approver": self.approver,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "overdue": "1" if self.overdue else None,
            "q": self.q,
            "sort": self.sort if self.sort != DEFAULT_SORT else None,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


def _int(raw: str, name: str, errors: dict[str, str]) -> int | None:
    if not raw:
        return None
    if raw.isdigit() and len(raw) < 10:
        return int(raw)
    errors[name] = "must be a user id (a whole number)"
    return None


def _date(raw: str, name: str, errors: dict[str, str]) -> date | None:
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        errors[name] = "must be a date written YYYY-MM-DD"
        return None
    if not 1900 <= value.year <= 2999:
        errors[name] = "must be a date between 1900 and 2999"
        return None
    return value


def encode_cursor(value: Any, row_id: uuid.UUID) -> str:
    raw = value.isoformat() if isinstance(value, datetime) else value
    data = json.dumps([raw, str(row_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _cursor(raw: str, sort: str, errors: dict[str, str]) -> tuple[Any, uuid.UUID] | None:
    if not raw:
        return None
    try:
        value, row_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        rid = uuid.UUID(str(row_id))
        if SORTS[sort][0] is ApprovalRequest.title:
            if not isinstance(value, str):
                raise ValueError
            return value, rid
        when = datetime.fromisoformat(str(value))
        if when.tzinfo is None:
            raise ValueError
        return when, rid
    except (ValueError, TypeError, KeyError, json.JSONDecodeError, UnicodeDecodeError):
        errors["after"] = "is not a page link of this list: start again from the first page"
        return None


def parse_filter(args: Mapping[str, str], *, page_size: int | None = None) -> RequestFilter:
    """A filter from query-string arguments; problems are in ``errors``, by field."""
    errors: dict[str, str] = {}

    def get(name: str) -> str:
        return str(args.get(name) or "").strip()

    status = get("status") or None
    if status and status not in STATUSES:
        errors["status"] = f"must be one of {', '.join(STATUSES)}"
        status = None
    sort = get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        errors["sort"] = f"must be one of {', '.join(SORTS)}"
        sort = DEFAULT_SORT
    q = " ".join(get("q").split()) or None
    if q and (len(q) > MAX_QUERY or "\x00" in q):
        errors["q"] = f"must be at most {MAX_QUERY} characters of text"
        q = None
    workflow = get("workflow") or None
    if workflow and len(workflow) > 64:
        errors["workflow"] = "is not a workflow key"
        workflow = None
    since = _date(get("since"), "since", errors)
    until = _date(get("until"), "until", errors)
    if since and until and since > until:
        errors["until"] = "must be on or after the start date"
    size = page_size or PAGE_SIZE
    if get("page_size"):
        if get("page_size").isdigit() and 1 <= int(get("page_size")) <= MAX_PAGE_SIZE:
            size = int(get("page_size"))
        else:
            errors["page_size"] = f"must be a whole number from 1 to {MAX_PAGE_SIZE}"
    return RequestFilter(
        workflow=workflow,
        status=status,
        requester=_int(get("requester"), "requester", errors),
        approver=_int(get("approver"), "approver", errors),
        since=since,
        until=until,
        overdue=get("overdue") in ("1", "true", "on", "yes"),
        q=q,
        sort=sort,
        page_size=size,
        after=_cursor(get("after"), sort, errors),
        errors=errors,
    )


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Match:
    """How a search (or the approver filter) selects rows: by id (``sparse``) or by
    testing each row (the stored words; the approver's steps and decisions)."""

    condition: ColumnElement[bool]
    sparse: bool
    #: No request matches (under RLS even a constant false plans a scan: skip it).
    empty: bool = False
    #: How many distinct requests the look-up found (all of them when sparse; when not,
    #: more than ``SPARSE`` proves the count "1,000+").
    size: int = 0


def _by_id(ids: list[uuid.UUID]) -> ColumnElement[bool]:
    """``id IN (SELECT unnest(<one uuid[] parameter>))``: a semi-join the planner sizes
    from the array (primary-key look-ups, or a hash of the ids while it walks the sort
    order). An ``IN`` list binds up to ``SPARSE`` parameters, and ``= ANY(array)``
    is a filter that compares each row with every id."""
    uuids = ARRAY(UUID(as_uuid=True))
    return ApprovalRequest.id.in_(select(func.unnest(cast(literal(ids, uuids), uuids))))


def match(session: Session, q: str) -> Match:
    """The condition for search words ``q``, chosen by how many requests match."""
    ids = list(session.scalars(select(func.signoff.request_search(q, SPARSE + 1))))
    if not ids:  # nothing matches: callers skip their queries
        return Match(false(), True, empty=True)
    if len(ids) <= SPARSE:
        return Match(_by_id(ids), True, size=len(set(ids)))
    return Match(
        SEARCH_VECTOR.op("@@")(func.websearch_to_tsquery("simple", q)), False, size=len(set(ids))
    )


def approver_condition(user: int) -> ColumnElement[bool]:
    """``user`` may decide (an active step open to them) or decided (as actor or principal),
    tested per request: index-only probes of ``ix_approval_step_active`` and a look-up of
    the request's decisions. ``open_approvers`` is empty on every step that is not active."""
    step = exists().where(
        ApprovalStep.tenant_id == ApprovalRequest.tenant_id,
        ApprovalStep.request_id == ApprovalRequest.id,
        ApprovalStep.status == "active",
        ApprovalStep.open_approvers.contains([user]),
    )
    decided = exists().where(
        StepDecision.tenant_id == ApprovalRequest.tenant_id,
        StepDecision.request_id == ApprovalRequest.id,
        or_(StepDecision.actor_id == user, StepDecision.principal_id == user),
    )
    return or_(step, decided)


def approver_match(session: Session, user: int) -> Match:
    """The condition for the approver filter, chosen by how many requests match."""
    open_to = list(session.scalars(select(func.signoff.requests_open_to(user, SPARSE + 1))))
    decided: list[uuid.UUID] = []
    if len(open_to) <= SPARSE:
        decided = list(
            session.scalars(
                select(StepDecision.request_id)
                .where(or_(StepDecision.actor_id == user, StepDecision.principal_id == user))
                .limit(SPARSE + 1)
            )
        )
    ids = {*open_to, *decided}
    if not ids:
        return Match(false(), True, empty=True)
    if len(open_to) > SPARSE or len(decided) > SPARSE or len(ids) > SPARSE:
        # (a request with two steps open to the person is listed twice: rows, not ids)
        return Match(approver_condition(user), False, size=len(ids))
    return Match(_by_id(sorted(ids)), True, size=len(ids))


def _where(
    f: RequestFilter,
    now: datetime,
    found: Match | None = None,
    approver: Match | None = None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.scope is not None:
        where.append(ApprovalRequest.workflow_key.in_(f.scope))
    if f.workflow:
        where.append(ApprovalRequest.workflow_key == f.workflow)
    if f.status:
        where.append(ApprovalRequest.status == f.status)
    if f.requester is not None:
        where.append(ApprovalRequest.requester_id == f.requester)
    if f.since:
        where.append(ApprovalRequest.submitted_at >= _start(f.since))
    if f.until:
        where.append(ApprovalRequest.submitted_at < _start(f.until + timedelta(days=1)))
    if approver is not None:
        where.append(approver.condition)
    elif f.approver is not None:
        where.append(approver_condition(f.approver))
    if f.overdue:
        where.append(
            exists().where(
                ApprovalStep.tenant_id == ApprovalRequest.tenant_id,
                ApprovalStep.request_id == ApprovalRequest.id,
                ApprovalStep.status == "active",
                ApprovalStep.due_at < now,
            )
        )
    if found is not None:
        where.append(found.condition)
    elif f.q:
        where.append(SEARCH_VECTOR.op("@@")(func.websearch_to_tsquery("simple", f.q)))
    return where


def filtered(
    f: RequestFilter,
    *,
    now: datetime | None = None,
    found: Match | None = None,
    approver: Match | None = None,
) -> Select[ApprovalRequest]:
    """The filtered requests, in the filter's order (no page)."""
    column, descending = SORTS[f.sort]
    q = select(ApprovalRequest).where(*_where(f, now or datetime.now(UTC), found, approver))
    if descending:
        return q.order_by(column.desc(), ApprovalRequest.id.desc())
    return q.order_by(column.asc(), ApprovalRequest.id.asc())


@dataclass(frozen=True)
class Page:
    rows: list[ApprovalRequest]
    next_after: str | None
    count: int
    count_capped: bool


def _alone(f: RequestFilter, found: Match | None, approver: Match | None) -> Match | None:
    """The search's or the approver's match when it is the filter's only condition."""
    others = (f.scope, f.workflow, f.status, f.requester, f.since, f.until, f.overdue or None)
    if any(value is not None for value in others) or (found and approver):
        return None
    return found or approver


def page(session: Session, f: RequestFilter, *, now: datetime | None = None) -> Page:
    """One keyset page of the filtered requests, and how many match (up to the cap)."""
    column, descending = SORTS[f.sort]
    now = now or datetime.now(UTC)
    found = match(session, f.q) if f.q else None
    if found is not None and found.empty:
        return Page([], None, 0, False)
    approver = approver_match(session, f.approver) if f.approver is not None else None
    if approver is not None and approver.empty:
        return Page([], None, 0, False)
    q = filtered(f, now=now, found=found, approver=approver)
    if f.after is not None:
        key = tuple_(column, ApprovalRequest.id)
        bound = tuple_(*f.after)
        q = q.where(key < bound if descending else key > bound)
    rows = list(session.scalars(q.limit(f.page_size + 1)))
    more = len(rows) > f.page_size
    rows = rows[: f.page_size]
    next_after = None
    if more and rows:
        last = rows[-1]
        next_after = encode_cursor(getattr(last, column.key), last.id)
    if not more and f.after is None:  # the first page holds every match
        return Page(rows, None, len(rows), False)
    alone = _alone(f, found, approver)
    if alone is not None and (alone.sparse or alone.size > COUNT_CAP):
        # The look-up already counted: every match, or more than the cap.
        return Page(rows, next_after, min(alone.size, COUNT_CAP), alone.size > COUNT_CAP)
    cap = COUNT_CAP if found is None or found.sparse else SEARCH_COUNT_CAP
    capped = select(ApprovalRequest.id).where(*_where(f, now, found, approver))
    counted = select(func.count()).select_from(capped.limit(cap + 1).subquery())
    count = int(session.scalar(counted) or 0)
    return Page(rows, next_after, min(count, cap), count > cap)


def iter_all(
    session: Session,
    f: RequestFilter,
    *,
    limit: int,
    batch: int = 1000,
    found: Match | None = None,
    approver: Match | None = None,
) -> Iterator[ApprovalRequest]:
    """Every filtered request in order (for the CSV export), read in keyset batches."""
    column, descending = SORTS[f.sort]
    after = f.after
    seen = 0
    if found is None and f.q:
        found = match(session, f.q)
    if found is not None and found.empty:
        return
    if approver is None and f.approver is not None:
        approver = approver_match(session, f.approver)
    if approver is not None and approver.empty:
        return
    while seen < limit:
        q = filtered(f, found=found, approver=approver)
        if after is not None:
            key = tuple_(column, ApprovalRequest.id)
            q = q.where(key < tuple_(*after) if descending else key > tuple_(*after))
        rows = list(session.scalars(q.limit(min(batch, limit - seen))))
        if not rows:
            return
        yield from rows
        seen += len(rows)
        last = rows[-1]
        after = (getattr(last, column.key), last.id)
        if len(rows) < batch:
            return
