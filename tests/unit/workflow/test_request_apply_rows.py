"""The rows the actions hand to signoff.request_apply / read from request_lock match the
column lists those SQL functions declare: jsonb_to_record ignores unknown keys and
turns missing ones into NULL, so a renamed key would otherwise be lost silently."""

from __future__ import annotations

import re
import uuid
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

from signoff.db.locks import _REQUEST_LOCK, _REQUEST_OPEN, REQUEST_COLUMNS
from signoff.workflow.actions.core import Actor, LockedRequest, _outbox_rows, _step_rows
from signoff.workflow.actions.decisions import _decision_row
from signoff.workflow.definitions import parse_definition
from signoff.workflow.engine import start

SQL = Path(__file__).resolve().parents[3] / "sql" / "functions" / "request_apply.sql"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def declared(alias: str) -> set[str]:
    """Column names of ``jsonb_to_record(set)(...) AS <alias>(...)`` in request_apply.sql."""
    match = re.search(
        rf"\bAS {alias}\((.*?)\)\s*(?:;|ON CONFLICT|RETURNING)", SQL.read_text(), re.S
    )
    assert match, f"no record alias {alias} in {SQL.name}"
    return {part.split()[0] for part in match.group(1).split(",")}


def request() -> LockedRequest:
    return LockedRequest(
        id=uuid.uuid4(),
        workflow_version_id=uuid.uuid4(),
        workflow_key="wf",
        version=1,
        title="Team dinner",
        requester_id=1,
        status="pending",
        status_label=None,
        input_data={},
        state={},
        escalations=0,
        round=1,
        completed_at=None,
    )


def started():
    defn = parse_definition(
        "wf",
        {"name": "WF", "steps": [{"name": "Manager", "required_role": "Manager"}]},
    )
    return start(
        defn,
        requester_id=1,
        requester_roles=(),
        input_data={},
        eligible_by_step=[{2: 1, 3: 1}],
        now=NOW,
    )


def test_decision_row_matches_the_declared_record():
    actor = Actor(user_id=2, method="api", ip_address="203.0.113.7", user_agent="x")
    row = _decision_row(request(), 0, "Manager", actor, None, "approve", "ok", False)
    assert set(row) == declared("d")


def test_step_rows_match_the_declared_record():
    rows = _step_rows(started().state)
    assert rows and all(set(r) == declared("x") for r in rows)


def test_outbox_rows_match_the_declared_record():
    rows = _outbox_rows(request(), started(), actor=Actor(user_id=1))
    assert rows and all(set(r) == declared("o") for r in rows)


def test_locked_request_reads_the_columns_request_lock_selects():
    # The request's columns, then what request_open adds (the delegations in force).
    assert tuple(f.name for f in fields(LockedRequest)) == (*REQUEST_COLUMNS, "delegations")
    selected = _REQUEST_LOCK.decode().split("SELECT ", 1)[1].split(" FROM ", 1)[0]
    assert tuple(c.strip() for c in selected.split(",")) == REQUEST_COLUMNS
    opened = _REQUEST_OPEN.decode().split("SELECT ", 1)[1].split(" FROM ", 1)[0]
    assert tuple(c.strip() for c in opened.split(",")) == (*REQUEST_COLUMNS, "delegations")


def test_the_caller_row_reads_the_columns_api_caller_selects():
    from signoff.security.caller import (
        _CALLER,
        _CALLER_BEFORE_0040,
        _CALLER_BEFORE_0047,
        _CALLERS,
        CALLER_COLUMNS,
    )

    selected = _CALLER.decode().split("SELECT ", 1)[1].split(" FROM ", 1)[0]
    assert tuple(c.strip() for c in selected.split(",")) == CALLER_COLUMNS
    assert CALLER_COLUMNS[-1] == "user_language"
    # Before 0047 and before 0040: prefixes of the same columns (the rest are None),
    # each shorter than the one tried before it.
    lengths = []
    for older in (_CALLER_BEFORE_0047, _CALLER_BEFORE_0040):
        before = older.decode().split("SELECT ", 1)[1].split(" FROM ", 1)[0]
        names = tuple(c.strip() for c in before.split(","))
        assert names == CALLER_COLUMNS[: len(names)]
        lengths.append(len(names))
    assert lengths == [len(CALLER_COLUMNS) - 1, CALLER_COLUMNS.index("tenant_mfa_required")]
    assert _CALLERS == (_CALLER, _CALLER_BEFORE_0047, _CALLER_BEFORE_0040)
