"""Tampering as the superuser (triggers off) is detected and located: kind and seq.

Every case runs on a fresh ten-event chain. The verdict is checked through the
SQL function in one pass and through Python in small batches, which must agree.
"""

from __future__ import annotations

import pytest

from tests.integration.audit.conftest import KEY, in_tenant

ROW = "tenant_id = %s AND seq = %s"


def _python_verdict(app, chain, batch_size):
    from signoff.audit.chain import combine, verify_batches

    with in_tenant(app, chain.id) as session:
        result = combine(chain.id, list(verify_batches(session, chain.id, batch_size=batch_size)))
    return (result.ok, result.broken_seq, result.problem)


def edit(column: str, value: str):
    def tamper(chain):
        chain.tamper((f"UPDATE audit_event SET {column} = {value} WHERE {ROW}", (chain.id, 4)))

    return tamper


def delete(*seqs: int):
    def tamper(chain):
        for seq in seqs:
            chain.tamper((f"DELETE FROM audit_event WHERE {ROW}", (chain.id, seq)))

    return tamper


def forge(prev: str, row: str):
    def tamper(chain):
        chain.tamper(
            (
                "INSERT INTO audit_event (tenant_id, seq, actor_id, action, object_type, "
                f"payload, prev_hash, row_hash) SELECT %s, 11, 1, 'request.approved', "
                f"'approval_request', '{{}}', {prev}, {row} "
                "FROM audit_event AS h WHERE h.tenant_id = %s AND h.seq = 10",
                (chain.id, chain.id),
            )
        )

    return tamper


def swap(a: int, b: int):
    def tamper(chain):
        chain.tamper(
            (f"UPDATE audit_event SET seq = 999999 WHERE {ROW}", (chain.id, a)),
            (f"UPDATE audit_event SET seq = %s WHERE {ROW}", (a, chain.id, b)),
            (f"UPDATE audit_event SET seq = %s WHERE {ROW}", (b, chain.id, 999999)),
        )

    return tamper


# A forged row must carry a correct hash over its own content to pass as "not edited".
GOOD_HASH = (
    "sha256({prev} || signoff.audit_canonical(h.tenant_id, 11, now(), 1, NULL, "
    "'request.approved', 'approval_request', NULL, '{{}}'))"
)

CASES = {
    "payload": (edit("payload", """payload || '{"comment": "approved, honest"}'"""), 4, "edited"),
    "actor": (edit("actor_id", "42"), 4, "edited"),
    "on_behalf_of": (edit("on_behalf_of_id", "42"), 4, "edited"),
    "occurred_at": (edit("occurred_at", "occurred_at - interval '1 day'"), 4, "edited"),
    "occurred_at_by_a_microsecond": (
        edit("occurred_at", "occurred_at + interval '1 microsecond'"),
        4,
        "edited",
    ),
    "action": (edit("action", "'request.rejected'"), 4, "edited"),
    "object_id_to_null": (edit("object_id", "NULL"), 4, "edited"),
    "row_hash": (edit("row_hash", "sha256(row_hash)"), 4, "edited"),
    "delete_middle": (delete(5), 6, "gap"),
    "delete_two_middle": (delete(5, 6), 7, "gap"),
    "delete_first": (delete(1), 2, "gap"),
    "bad_first_link": (
        lambda c: c.tamper(
            (f"UPDATE audit_event SET prev_hash = sha256(prev_hash) WHERE {ROW}", (c.id, 1))
        ),
        1,
        "bad_first_link",
    ),
    "forged_row_wrong_link": (
        forge("sha256('forged'::bytea)", GOOD_HASH.format(prev="sha256('forged'::bytea)")),
        11,
        "fork",
    ),
    "forged_row_wrong_hash": (forge("h.row_hash", "sha256('forged'::bytea)"), 11, "edited"),
    "forged_row_after_a_gap": (
        lambda c: c.tamper(
            (
                "INSERT INTO audit_event (tenant_id, seq, action, object_type, prev_hash, "
                "row_hash) SELECT tenant_id, 13, action, object_type, row_hash, "
                "sha256(row_hash) FROM audit_event WHERE tenant_id = %s AND seq = 10",
                (c.id,),
            )
        ),
        13,
        "gap",
    ),
    "reorder_adjacent": (swap(3, 4), 3, "fork"),
    "reorder_distant": (swap(2, 8), 2, "fork"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_detected_and_located(app, chain, case):
    tamper, seq, kind = CASES[case]
    assert chain.verify()["ok"]
    tamper(chain)
    result = chain.verify()
    assert (result["ok"], result["broken_seq"], result["problem"]) == (False, seq, kind)
    for batch_size in (1, 3, 100):
        assert _python_verdict(app, chain, batch_size) == (False, seq, kind), batch_size


def test_edit_and_rehash_of_one_row_breaks_the_next_link(chain):
    chain.tamper(
        (
            f'UPDATE audit_event SET payload = \'{{"comment": "forged"}}\' WHERE {ROW}',
            (chain.id, 6),
        ),
        (
            "UPDATE audit_event SET row_hash = sha256(prev_hash || signoff.audit_canonical("
            "tenant_id, seq, occurred_at, actor_id, on_behalf_of_id, action, object_type, "
            f"object_id, payload)) WHERE {ROW}",
            (chain.id, 6),
        ),
    )
    result = chain.verify()
    assert (result["broken_seq"], result["problem"]) == (7, "fork")


def _sign(app, chain):
    from signoff.audit.checkpoints import sign_checkpoint

    with in_tenant(app, chain.id) as session:
        checkpoint = sign_checkpoint(session, chain.id, KEY, "k1")
        session.commit()
    return checkpoint


def _checkpoints(app, chain, keys=None):
    from signoff.audit.checkpoints import full_verification

    with in_tenant(app, chain.id) as session:
        return full_verification(session, chain.id, keys or {"k1": KEY})


def test_cut_off_tail_is_invisible_to_the_chain_but_not_to_checkpoints(app, chain):
    _sign(app, chain)
    delete(9, 10)(chain)
    full = _checkpoints(app, chain)
    assert full.chain.ok and full.chain.head_seq == 8
    assert not full.ok
    (problem,) = full.checkpoints.problems
    assert (problem.seq, problem.kind) == (10, "truncated")
    assert "truncated" in full.message and "@10" in full.message


def test_keyless_recomputation_verifies_but_checkpoints_catch_it(app, chain):
    _sign(app, chain)
    chain.append(2)
    _sign(app, chain)
    chain.tamper(
        (
            f'UPDATE audit_event SET payload = \'{{"comment": "rewritten"}}\' WHERE {ROW}',
            (chain.id, 3),
        )
    )
    assert chain.verify()["problem"] == "edited"
    chain.recompute_from(3)
    full = _checkpoints(app, chain)
    assert full.chain.ok  # the chain alone cannot tell
    assert [(p.seq, p.kind) for p in full.checkpoints.problems] == [
        (10, "rewritten"),
        (12, "rewritten"),
    ]


def test_replaced_checkpoint_fails_its_signature(app, chain):
    checkpoint = _sign(app, chain)
    chain.append(1)
    chain.recompute_from(5)
    # The forger moves the checkpoint to the new hash but cannot sign it.
    chain.tamper(
        (
            "UPDATE audit_checkpoint SET head_hash = e.row_hash, signature = sha256(e.row_hash) "
            "FROM audit_event AS e WHERE e.tenant_id = audit_checkpoint.tenant_id "
            "AND e.seq = audit_checkpoint.seq AND audit_checkpoint.tenant_id = %s",
            (chain.id,),
        )
    )
    full = _checkpoints(app, chain)
    assert full.chain.ok
    assert [(p.seq, p.kind) for p in full.checkpoints.problems] == [
        (checkpoint.seq, "bad_signature")
    ]


def test_signing_refuses_to_cover_a_rewritten_chain(app, chain):
    from signoff.audit.chain import AuditError

    _sign(app, chain)
    chain.append(2)
    edit("payload", "'{}'")(chain)
    chain.recompute_from(4)
    with pytest.raises(AuditError, match="k1@10 no longer matches the chain"):
        _sign(app, chain)


def test_signing_refuses_a_break_after_the_last_checkpoint(app, chain):
    from signoff.audit.chain import AuditError

    _sign(app, chain)
    chain.append(3)
    chain.tamper((f"UPDATE audit_event SET actor_id = 99 WHERE {ROW}", (chain.id, 12)))
    with pytest.raises(AuditError, match="seq 12: edited"):
        _sign(app, chain)


def test_owner_cannot_turn_the_triggers_off_with_a_session_setting(chain):
    """Only DDL (ALTER TABLE ... DISABLE TRIGGER, logged) or a superuser gets past them."""
    from psycopg import errors

    with chain.database.connect("owner") as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(chain.id),))
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SET session_replication_role = replica")
    assert chain.verify()["ok"]
