"""``signoff audit verify | checkpoint | report`` through click, as the app role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from signoff.cli import cli
from tests.integration.audit.conftest import KEY


@pytest.fixture
def run(database, redis_url):
    env = {
        "SIGNOFF_DATABASE_URL": database.app_url.render_as_string(hide_password=False),
        "SIGNOFF_SECRET_KEY": "cli-test-secret-key-0123456789abcdef",
        "SIGNOFF_REDIS_URL": redis_url,
        "SIGNOFF_AUDIT_KEY": KEY.decode(),
        "SIGNOFF_AUDIT_KEY_ID": "k1",
        "SIGNOFF_AUDIT_OLD_KEYS": "",
    }

    def invoke(*args: str, **extra_env: str):
        return CliRunner().invoke(cli, ["audit", *args], env={**env, **extra_env})

    return invoke


def test_verify_exits_0_on_a_clean_chain_and_1_after_tampering(run, chain):
    ok = run("verify", "--tenant", chain.slug, "--batch-size", "3")
    assert ok.exit_code == 0, ok.output
    assert f"{chain.slug}: OK: chain ok: 10 events, head seq 10" in ok.output
    assert "1 tenant(s) verified, 0 broken" in ok.output

    chain.tamper(
        (
            'UPDATE audit_event SET payload = \'{"comment": "x"}\' '
            "WHERE tenant_id = %s AND seq = 4",
            (chain.id,),
        )
    )
    broken = run("verify", "--tenant", chain.slug, "--batch-size", "3")
    assert broken.exit_code == 1, broken.output
    assert f"{chain.slug}: BROKEN seq=4 kind=edited" in broken.output


def test_verify_all_tenants_reports_each_break(run, chain, new_chain):
    clean = new_chain()
    clean.append(2)
    chain.tamper(("DELETE FROM audit_event WHERE tenant_id = %s AND seq = 5", (chain.id,)))
    result = run("verify")
    assert result.exit_code == 1, result.output
    assert f"{chain.slug}: BROKEN seq=6 kind=gap" in result.output
    assert f"{clean.slug}: OK: chain ok: 2 events" in result.output


def test_checkpoint_signs_and_verify_then_checks_it(run, chain):
    signed = run("checkpoint", "--tenant", chain.slug)
    assert signed.exit_code == 0, signed.output
    assert f"{chain.slug}: checkpoint tenant={chain.id} seq=10 key=k1" in signed.output
    with chain.app() as conn:
        assert conn.execute("SELECT seq, key_id FROM audit_checkpoint").fetchall() == [(10, "k1")]

    verified = run("verify", "--tenant", chain.slug)
    assert verified.exit_code == 0, verified.output
    assert "checkpoints ok: 1 verified, newest at seq 10" in verified.output

    chain.tamper(("DELETE FROM audit_event WHERE tenant_id = %s AND seq >= 9", (chain.id,)))
    cut = run("verify", "--tenant", chain.slug)
    assert cut.exit_code == 1, cut.output
    assert f"{chain.slug}: BROKEN seq=10 kind=truncated" in cut.output
    # With the wrong key the same checkpoint is a forgery.
    wrong = run("verify", "--tenant", chain.slug, SIGNOFF_AUDIT_KEY="another-key")
    assert f"{chain.slug}: BROKEN seq=10 kind=bad_signature" in wrong.output


def test_checkpoint_of_every_tenant_and_refusals(run, chain, new_chain):
    empty, broken = new_chain(), new_chain()
    broken.append(3)
    broken.tamper(
        ("UPDATE audit_event SET actor_id = 5 WHERE tenant_id = %s AND seq = 2", (broken.id,))
    )
    result = run("checkpoint")
    assert result.exit_code == 1, result.output  # at least our broken tenant
    assert f"{chain.slug}: checkpoint tenant={chain.id} seq=10" in result.output
    assert f"{empty.slug}: no events" in result.output
    assert f"{broken.slug}: NOT SIGNED: not signing: chain BROKEN at seq 2: edited" in (
        result.output
    )
    no_key = run("checkpoint", "--tenant", chain.slug, SIGNOFF_AUDIT_KEY="")
    assert no_key.exit_code != 0 and "SIGNOFF_AUDIT_KEY is not set" in no_key.output


def test_report_writes_csv_and_pdf(run, chain, tmp_path):
    # Yesterday to tomorrow: holds today's events even if UTC midnight passes meanwhile.
    today = datetime.now(UTC).date()
    first, last = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()
    out = tmp_path / "report.csv"
    result = run("report", "--tenant", chain.slug, "--from", first, "--to", last, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"{chain.slug}: 10 events written to {out} (verified)" in result.output
    text = out.read_text(encoding="utf-8")
    assert f"# tenant: Audit {chain.slug} ({chain.slug})" in text
    assert "# verification: OK" in text
    assert text.count("request.approved") == 10

    pdf = tmp_path / "report.pdf"
    result = run(
        "report",
        "--tenant",
        chain.slug,
        "--from",
        first,
        "--to",
        last,
        "--format",
        "pdf",
        "-o",
        str(pdf),
    )
    assert result.exit_code == 0, result.output
    assert pdf.read_bytes().startswith(b"%PDF-")

    missing = run(
        "report", "--tenant", "no-such-tenant", "--from", first, "--to", last, "-o", str(out)
    )
    assert missing.exit_code != 0 and "no tenant 'no-such-tenant'" in missing.output
