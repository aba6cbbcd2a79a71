"""Signed checkpoints: HMAC under a key the database never sees, key rotation, grants."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from psycopg import errors

from signoff.audit.checkpoints import (
    AuditKeys,
    audit_keys,
    checkpoint_message,
    full_verification,
    parse_old_keys,
    sign_checkpoint,
    verify_checkpoints,
)
from tests.integration.audit.conftest import KEY, in_tenant


def sign(app, chain, key=KEY, key_id="k1"):
    with in_tenant(app, chain.id) as session:
        checkpoint = sign_checkpoint(session, chain.id, key, key_id)
        session.commit()
    return checkpoint


def check(app, chain, keys):
    with in_tenant(app, chain.id) as session:
        return verify_checkpoints(session, chain.id, keys)


def test_sign_stores_an_hmac_of_tenant_seq_and_head(app, chain):
    checkpoint = sign(app, chain)
    head = chain.rows()[-1]
    assert (checkpoint.tenant_id, checkpoint.seq, checkpoint.key_id) == (chain.id, 10, "k1")
    assert checkpoint.head_hash == head["row_hash"]
    message = f"{chain.id}|10|{head['row_hash'].hex()}".encode()
    assert checkpoint_message(chain.id, 10, head["row_hash"]) == message
    assert checkpoint.signature == hmac.new(KEY, message, hashlib.sha256).digest()
    with chain.app() as conn:
        stored = conn.execute("SELECT seq, head_hash, key_id, signature FROM audit_checkpoint")
        assert stored.fetchall() == [(10, head["row_hash"], "k1", checkpoint.signature)]


def test_signing_is_idempotent_and_follows_the_head(app, chain):
    first = sign(app, chain)
    assert sign(app, chain) == first
    chain.append(5)
    second = sign(app, chain)
    assert second.seq == 15 and second.signature != first.signature
    result = check(app, chain, {"k1": KEY})
    assert result.ok and result.checked == 2 and result.newest_seq == 15
    assert result.message == "checkpoints ok: 2 verified, newest at seq 15"


def test_empty_chain_has_nothing_to_sign(app, new_chain):
    c = new_chain()
    assert sign(app, c) is None
    result = check(app, c, {"k1": KEY})
    assert result.ok and result.checked == 0 and result.message == "checkpoints: none yet"


def test_wrong_or_missing_key_fails(app, chain):
    sign(app, chain)
    wrong = check(app, chain, {"k1": b"not-the-key"})
    assert [(p.seq, p.kind) for p in wrong.problems] == [(10, "bad_signature")]
    unknown = check(app, chain, {"k2": KEY})
    assert [(p.seq, p.kind) for p in unknown.problems] == [(10, "unknown_key")]
    assert "k1@10: unknown_key" in unknown.message


def test_key_rotation_keeps_old_checkpoints_verifiable(app, chain):
    sign(app, chain, KEY, "k1")
    chain.append(2)
    new_key = b"the-next-key"
    config = {
        "SIGNOFF_AUDIT_KEY": new_key.decode(),
        "SIGNOFF_AUDIT_KEY_ID": "k2",
        "SIGNOFF_AUDIT_OLD_KEYS": f"k1:{KEY.decode()}",
    }
    keys = audit_keys(config)
    assert keys.current_id == "k2" and keys.current == new_key
    assert dict(keys.all) == {"k1": KEY, "k2": new_key}
    sign(app, chain, keys.current, keys.current_id)
    assert check(app, chain, keys.all).ok
    without_old = check(app, chain, {"k2": new_key})
    assert [(p.seq, p.kind) for p in without_old.problems] == [(10, "unknown_key")]
    with in_tenant(app, chain.id) as session:
        full = full_verification(session, chain.id, keys.all)
    assert full.ok, full.message
    assert "chain ok: 12 events" in full.message and "2 verified" in full.message


def test_key_parsing():
    assert parse_old_keys(None) == {}
    assert parse_old_keys(" a:x , b:y:z ,") == {"a": b"x", "b": b"y:z"}
    for bad in ("s3cret", ":s3cret", "a:", "a:s3cret,a:s3cret"):
        with pytest.raises(ValueError) as info:
            parse_old_keys(bad)
        assert "s3cret" not in str(info.value)
    assert audit_keys({}) == AuditKeys(current_id=None, current=None, all={})
    assert audit_keys({"SIGNOFF_AUDIT_KEY": "s3cret"}).all == {"k1": b"s3cret"}
    with pytest.raises(ValueError, match="different key under the current id"):
        audit_keys({"SIGNOFF_AUDIT_KEY": "a", "SIGNOFF_AUDIT_OLD_KEYS": "k1:b"})
    assert "s3cret" not in repr(audit_keys({"SIGNOFF_AUDIT_KEY": "s3cret"}))


def test_the_key_never_reaches_the_database(app, chain, database):
    sign(app, chain)
    with database.connect("admin") as conn:
        dump = conn.execute(
            "SELECT string_agg(encode(head_hash, 'hex') || encode(signature, 'hex') || key_id, '')"
            " FROM audit_checkpoint"
        ).fetchone()[0]
        statements = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s", (f"%{KEY.decode()}%",)
        ).fetchone()[0]
    assert KEY.hex() not in dump and KEY.decode() not in dump
    assert statements == 0


def test_app_role_inserts_checkpoints_but_cannot_change_them(app, chain, new_chain):
    sign(app, chain)
    for sql in (
        "UPDATE audit_checkpoint SET key_id = 'x'",
        "DELETE FROM audit_checkpoint",
        "TRUNCATE audit_checkpoint",
    ):
        with chain.app() as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute(sql)
    other = new_chain()
    with other.app() as conn:
        assert conn.execute("SELECT count(*) FROM audit_checkpoint").fetchone() == (0,)
        # Nor can it plant a checkpoint into the first tenant.
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO audit_checkpoint (tenant_id, seq, head_hash, key_id, signature) "
                "VALUES (%s, 1, %s, 'k9', %s)",
                (chain.id, b"\0" * 32, b"\0" * 32),
            )
    assert check(app, chain, {"k1": KEY}).checked == 1


def test_checkpoint_must_name_an_existing_event(app, chain):
    with chain.app() as conn, pytest.raises(errors.ForeignKeyViolation):
        conn.execute(
            "INSERT INTO audit_checkpoint (tenant_id, seq, head_hash, key_id, signature) "
            "VALUES (%s, 99, %s, 'k1', %s)",
            (chain.id, b"\0" * 32, b"\0" * 32),
        )
