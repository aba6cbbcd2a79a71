"""``signoff escalations run`` and ``signoff tenants apply|export`` through click.

Each command builds its own app from ``SIGNOFF_*`` variables and connects as the
app role, exactly as in production; the effects are checked in PostgreSQL.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from signoff.cli import cli
from signoff.workflow import actions as A
from tests.integration.workflow.conftest import actor, in_tenant, save


@pytest.fixture
def run(app, database, redis_url):
    # ``app`` (unused here) has synchronized FAB's roles and permissions, as
    # ``signoff db upgrade`` does in production; the commands build their own app.
    env = {
        "SIGNOFF_DATABASE_URL": database.app_url.render_as_string(hide_password=False),
        "SIGNOFF_SECRET_KEY": "cli-test-secret-key-0123456789abcdef",
        "SIGNOFF_REDIS_URL": redis_url,
        "SIGNOFF_AUDIT_KEY": "test-audit-key",
    }

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(cli, list(args), env=env)

    return invoke


# --------------------------------------------------------------------------- escalations


SLA_WORKFLOW = {
    "name": "With SLA",
    "steps": [
        {
            "name": "Manager",
            "required_role": "Manager",
            "sla_hours": 4,
            "reminder_hours": 1,
            "escalate_to": {"type": "role", "role": "CFO"},
        }
    ],
}
NOBODY_TO_ESCALATE_TO = {
    "name": "SLA, nobody to escalate to",
    "steps": [
        {
            "name": "Manager",
            "required_role": "Manager",
            "sla_hours": 4,
            "escalate_to": {"type": "role", "role": "Legal"},  # no member holds Legal
        }
    ],
}


def overdue(database: Any, rid: Any) -> None:
    """Move a request's active step into the past (activated and due long ago), in both
    the step projection the sweep selects on and the engine state it decides on."""
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE approval_step SET activated_at = '2001-01-01T00:00:00Z', "
            "due_at = '2001-01-01T04:00:00Z' WHERE request_id = %s AND step_index = 0",
            (rid,),
        )
        conn.execute(
            "UPDATE approval_request SET state = jsonb_set(jsonb_set(state, "
            "'{steps,0,activated_at}', '\"2001-01-01T00:00:00+00:00\"'), "
            "'{steps,0,due_at}', '\"2001-01-01T04:00:00+00:00\"') WHERE id = %s",
            (rid,),
        )


def escalation_effects(database: Any, rid: Any) -> tuple[Any, ...]:
    with database.connect("admin") as conn:
        step = conn.execute(
            "SELECT escalated, open_approvers FROM approval_step "
            "WHERE request_id = %s AND step_index = 0",
            (rid,),
        ).fetchone()
        audits = conn.execute(
            "SELECT actor_id, payload->'targets' FROM audit_event "
            "WHERE object_id = %s AND action = 'request.escalated'",
            (str(rid),),
        ).fetchall()
        outbox = conn.execute(
            "SELECT kind, recipient_id FROM notification_outbox WHERE request_id = %s "
            "AND (kind = 'reminder' OR payload->>'escalated' = 'true') "
            "ORDER BY kind, recipient_id",
            (rid,),
        ).fetchall()
        escalations = conn.execute(
            "SELECT escalations FROM approval_request WHERE id = %s", (rid,)
        ).fetchone()[0]
    return step, audits, outbox, escalations


def test_escalations_run_escalates_overdue_steps_once(run, app, database, tenant_factory):
    t = tenant_factory()
    save(app, t, "sla", SLA_WORKFLOW)
    save(app, t, "stuck", NOBODY_TO_ESCALATE_TO)
    with in_tenant(app, t) as s:
        due = A.do_submit(s, actor=actor(t, "alice"), workflow_key="sla", input_data={}).request_id
        stuck = A.do_submit(
            s, actor=actor(t, "alice"), workflow_key="stuck", input_data={}
        ).request_id
        fresh = A.do_submit(
            s, actor=actor(t, "alice"), workflow_key="sla", input_data={}
        ).request_id
    overdue(database, due)
    overdue(database, stuck)
    managers = sorted([t.user("manager"), t.user("manager2")])

    first = run("escalations", "run")
    assert first.exit_code == 0, first.output
    escalated = re.search(r"^escalated (\d+) step\(s\), ", first.stdout, re.M)
    reminded = re.search(r" (\d+) reminder\(s\)$", first.stdout, re.M)
    assert escalated and reminded, first.stdout
    assert int(escalated[1]) >= 1 and int(reminded[1]) >= 1
    # The overdue step with nobody to escalate to is reported, by tenant and request.
    assert f"{t.id}/{stuck}[0]: no_escalation_target" in first.stderr

    step, audits, outbox, escalations = escalation_effects(database, due)
    assert step == (True, sorted([*managers, t.user("cfo")]))
    assert audits == [(None, [t.user("cfo")])]  # by the system, to the CFO
    assert escalations == 1
    # Everyone who may now decide hears of the escalation, the CFO included, and (the
    # reminder time having passed too) gets one reminder.
    deciders = sorted([*managers, t.user("cfo")])
    assert outbox == [("approval_needed", u) for u in deciders] + [
        ("reminder", u) for u in deciders
    ]
    # A step that is not overdue, and one with nobody to escalate to, are left alone.
    assert escalation_effects(database, fresh) == ((False, managers), [], [], 0)
    stuck_before = escalation_effects(database, stuck)
    assert stuck_before[:2] == ((False, managers), [])

    second = run("escalations", "run")
    assert second.exit_code == 0, second.output
    assert re.search(r"^escalated \d+ step\(s\), ", second.stdout, re.M), second.stdout
    # Nothing happens twice: no second escalation, no second reminder.
    assert escalation_effects(database, due) == (step, audits, outbox, 1)
    assert escalation_effects(database, stuck) == stuck_before
    assert str(due) not in second.output

    # The escalated step really is the CFO's now.
    with in_tenant(app, t) as s:
        assert (
            A.do_approve(s, actor=actor(t, "cfo"), request_id=due, step_index=0).status
            == "approved"
        )


# --------------------------------------------------------------------------- tenants


def manifest(slug: str) -> dict[str, Any]:
    def member(key: str, roles: list[str], manager: str | None = None) -> dict[str, Any]:
        m: dict[str, Any] = {
            "username": f"{slug}-{key}",
            "email": f"{key}@{slug}.example",
            "first_name": key.capitalize(),
            "last_name": "Tester",
            "roles": roles,
        }
        if manager:
            m["manager"] = f"{slug}-{manager}"
        return m

    return {
        "tenant": {"slug": slug, "name": f"Tenant {slug}", "plan": "team"},
        "roles": ["Legal"],
        "members": [
            member("admin", ["Admin"]),
            member("boss", ["Manager"], "admin"),
            member("lawyer", ["Legal"]),
            member("alice", ["Requester"], "boss"),
        ],
        "workflows": {
            "purchase": {
                "name": "Purchase",
                "fields": [{"name": "amount", "type": "decimal", "required": True, "min": 0}],
                "steps": [
                    {"name": "Line manager", "approvers": [{"type": "manager"}]},
                    {"name": "Legal", "required_role": "Legal"},
                ],
            }
        },
        "rules": [
            {
                "name": "Big purchase",
                "workflow": "purchase",
                "priority": 10,
                "conditions": [{"field": "input_data.amount", "operator": ">", "value": 5000}],
                "approvers": [{"type": "role", "role": "Admin", "required": True}],
            }
        ],
    }


def write(tmp_path: Any, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def tenant_state(database: Any, slug: str) -> dict[str, Any]:
    """What a manifest controls, read as the database owner (no RLS)."""
    with database.connect("admin") as conn:
        row = conn.execute("SELECT id, name, plan FROM tenant WHERE slug = %s", (slug,)).fetchone()
        if row is None:
            return {}
        tid = row[0]
        members = conn.execute(
            "SELECT u.username, coalesce(mu.username, ''), "
            "array(SELECT r.name FROM membership_role mr JOIN tenant_role r "
            "ON r.tenant_id = mr.tenant_id AND r.id = mr.role_id "
            "WHERE mr.membership_id = m.id ORDER BY r.name) "
            "FROM membership m JOIN ab_user u ON u.id = m.user_id "
            "LEFT JOIN membership mm ON mm.id = m.manager_id "
            "LEFT JOIN ab_user mu ON mu.id = mm.user_id "
            "WHERE m.tenant_id = %s ORDER BY u.username",
            (tid,),
        ).fetchall()
        versions = conn.execute(
            "SELECT w.key, v.version FROM workflow_version v JOIN workflow w "
            "ON w.tenant_id = v.tenant_id AND w.id = v.workflow_id "
            "WHERE v.tenant_id = %s ORDER BY w.key, v.version",
            (tid,),
        ).fetchall()
        rules = conn.execute(
            "SELECT name, priority, workflow_key FROM approval_rule WHERE tenant_id = %s",
            (tid,),
        ).fetchall()
        roles = conn.execute(
            "SELECT name FROM tenant_role WHERE tenant_id = %s ORDER BY name", (tid,)
        ).fetchall()
    return {
        "tenant": row[1:],
        "members": members,
        "versions": versions,
        "rules": rules,
        "roles": [r for (r,) in roles],
    }


def test_tenants_apply_creates_then_changes_nothing(run, database, tmp_path):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    path = write(tmp_path, "tenant.yaml", manifest(slug))

    first = run("tenants", "apply", path)
    assert first.exit_code == 0, first.output
    line = first.stdout.strip()
    assert line.startswith(f"{slug}: tenant {slug}, "), line
    for change in (
        f"member {slug}-alice",
        "role Legal",
        "rule Big purchase",
        "workflow purchase v1",
        f"member {slug}-alice manager={slug}-boss",
    ):
        assert change in line, change
    state = tenant_state(database, slug)
    assert state["tenant"] == (f"Tenant {slug}", "team")
    assert state["members"] == [
        (f"{slug}-admin", "", ["Admin"]),
        (f"{slug}-alice", f"{slug}-boss", ["Requester"]),
        (f"{slug}-boss", f"{slug}-admin", ["Manager"]),
        (f"{slug}-lawyer", "", ["Legal"]),
    ]
    assert state["versions"] == [("purchase", 1)]
    assert state["rules"] == [("Big purchase", 10, "purchase")]
    assert "Legal" in state["roles"]

    again = run("tenants", "apply", path)
    assert again.exit_code == 0, again.output
    assert again.stdout == f"{slug}: no changes\n"
    assert tenant_state(database, slug) == state


def unknown_role(m: dict[str, Any]) -> None:
    m["members"][3]["roles"] = ["Wizard"]


def foreign_manager(m: dict[str, Any]) -> None:
    m["members"][3]["manager"] = "someone-else"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m["tenant"].pop("name"), "tenant.name is required"),
        (lambda m: m["tenant"].update(plan="platinum"), "tenant.plan must be one of"),
        (lambda m: m["members"][2].pop("email"), "members[2].email is required"),
        (unknown_role, "members[3].roles: unknown role(s) ['Wizard']"),
        (foreign_manager, "members[3].manager: 'someone-else' is not a member here"),
    ],
    ids=["no-name", "bad-plan", "no-email", "unknown-role", "foreign-manager"],
)
def test_tenants_apply_refuses_a_broken_manifest_naming_the_key(
    run, database, tmp_path, mutate, message
):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    data = manifest(slug)
    mutate(data)
    path = write(tmp_path, "broken.yaml", data)
    result = run("tenants", "apply", path)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a clean error, not a traceback
    assert result.stderr.startswith(f"Error: {path}: "), result.stderr
    assert message in result.stderr, result.stderr
    assert result.stdout == ""
    # Nothing of what the manifest describes beyond the tenant record was applied.
    state = tenant_state(database, slug)
    assert state.get("members", []) == [] and state.get("versions", []) == []


@pytest.mark.parametrize("mutate", [unknown_role, foreign_manager], ids=["role", "manager"])
def test_tenants_apply_of_a_refused_manifest_writes_nothing(run, database, tmp_path, mutate):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    data = manifest(slug)
    mutate(data)
    result = run("tenants", "apply", write(tmp_path, "broken.yaml", data))
    assert result.exit_code == 1, result.output
    assert tenant_state(database, slug) == {}


def test_tenants_apply_refuses_an_invalid_workflow_naming_its_path(run, database, tmp_path):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    data = manifest(slug)
    data["workflows"]["purchase"]["steps"][1]["pattern"] = "mojority"
    result = run("tenants", "apply", write(tmp_path, "broken.yaml", data))
    assert result.exit_code == 1, result.output
    assert tenant_state(database, slug).get("versions", []) == []
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "purchase" in result.stderr and "steps[1].pattern" in result.stderr


def test_tenants_apply_refuses_a_file_that_is_not_a_mapping(run, tmp_path):
    result = run("tenants", "apply", write(tmp_path, "list.yaml", "- just\n- a list\n"))
    assert result.exit_code == 1, result.output
    assert "a manifest is a mapping" in result.stderr


def test_tenants_export_round_trips(run, app, database, tmp_path):
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    source = manifest(slug)
    assert run("tenants", "apply", write(tmp_path, "in.yaml", source)).exit_code == 0
    before = tenant_state(database, slug)

    exported = run("tenants", "export", slug)
    assert exported.exit_code == 0, exported.output
    data = yaml.safe_load(exported.stdout)
    assert data["tenant"]["slug"] == slug and data["tenant"]["plan"] == "team"
    assert data["roles"] == ["Legal"]
    by_name = {m["username"]: m for m in data["members"]}
    assert set(by_name) == {m["username"] for m in source["members"]}
    assert by_name[f"{slug}-alice"]["manager"] == f"{slug}-boss"
    assert by_name[f"{slug}-alice"]["roles"] == ["Requester"]
    assert "password" not in exported.stdout
    assert set(data["workflows"]) == {"purchase"}
    assert [s["name"] for s in data["workflows"]["purchase"]["steps"]] == [
        "Line manager",
        "Legal",
    ]
    assert [r["name"] for r in data["rules"]] == ["Big purchase"]
    assert data["rules"][0]["workflow"] == "purchase"

    back = run("tenants", "apply", write(tmp_path, "out.yaml", exported.stdout))
    assert back.exit_code == 0, back.output
    assert back.stdout == f"{slug}: no changes\n"
    assert tenant_state(database, slug) == before
    again = run("tenants", "export", slug)
    assert again.exit_code == 0 and again.stdout == exported.stdout


def test_tenants_export_of_an_unknown_slug_fails(run):
    result = run("tenants", "export", "no-such-tenant-here")
    assert result.exit_code == 1, result.output
    assert "no tenant 'no-such-tenant-here'" in result.stderr
