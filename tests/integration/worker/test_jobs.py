"""The clean-up job, run by a real worker on the real broker: what expired is
forgotten, what is still live stays."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.integration.worker.conftest import Worker


def _scalar(database: Any, sql: str, *args: Any) -> Any:
    with database.connect("admin") as conn:
        return conn.execute(sql, args).fetchone()[0]


def _user_id(database: Any, username: str) -> int:
    return int(_scalar(database, "SELECT id FROM ab_user WHERE username = %s", username))


def _seed(database: Any, tenant: Any) -> dict[str, list[str]]:
    """Rows past their time (``gone``) and rows still live (``kept``), by table."""
    tag = uuid.uuid4().hex[:8]
    user = _user_id(database, tenant.username("alice"))
    old_keys, fresh_keys = [f"old-{tag}-{i}" for i in range(2)], [f"fresh-{tag}"]
    old_jti, fresh_jti = f"old-{tag}", f"fresh-{tag}"
    # Each link: expires in, used (None: never); intervals from now.
    tokens = {
        "expired": ("-1 minute", None),
        "used_long_ago": ("1 hour", "-2 days"),
        "superseded_long_ago": ("20 hours", "-25 hours"),
        "used_just_now": ("1 hour", "-1 minute"),
        "live": ("1 hour", None),
    }
    with database.connect("admin") as conn:
        for key, age in [(k, "5 days") for k in old_keys] + [(k, "1 hour") for k in fresh_keys]:
            conn.execute(
                "INSERT INTO idempotency_key (tenant_id, user_id, key, action, fingerprint, "
                "created_at) VALUES (%s, %s, %s, 'submit', 'f', now() - %s::interval)",
                (tenant.id, user, key, age),
            )
        for jti, expiry in ((old_jti, "-1 minute"), (fresh_jti, "1 hour")):
            conn.execute(
                "INSERT INTO mfa_token_verification (user_id, jti, verified_at, expires_at) "
                "VALUES (%s, %s, now() - interval '2 hours', now() + %s::interval)",
                (user, jti, expiry),
            )
        for name, (expires, used) in tokens.items():
            conn.execute(
                "INSERT INTO account_token (purpose, email, token_hash, expires_at, used_at) "
                "VALUES ('reset', %s, %s, now() + %s::interval, now() + %s::interval)",
                (f"{name}-{tag}@cleanup.example", uuid.uuid4().hex * 2, expires, used),
            )
        conn.commit()
    return {
        "idempotency": old_keys + fresh_keys,
        "mfa": [old_jti, fresh_jti],
        "tokens": [f"{name}-{tag}@cleanup.example" for name in tokens],
    }


def _present(database: Any, seeded: dict[str, list[str]]) -> set[str]:
    with database.connect("admin") as conn:
        keys = conn.execute(
            "SELECT key FROM idempotency_key WHERE key = ANY(%s)", (seeded["idempotency"],)
        ).fetchall()
        jtis = conn.execute(
            "SELECT jti FROM mfa_token_verification WHERE jti = ANY(%s)", (seeded["mfa"],)
        ).fetchall()
        mails = conn.execute(
            "SELECT email FROM account_token WHERE email = ANY(%s)", (seeded["tokens"],)
        ).fetchall()
    return {r[0] for r in keys + jtis + mails}


def _kept(seeded: dict[str, list[str]]) -> set[str]:
    """What clean-up must leave: the fresh key, the live verification, the live link
    and the one used a minute ago (it still answers "already used")."""
    return {
        seeded["idempotency"][-1],
        seeded["mfa"][1],
        *(m for m in seeded["tokens"] if m.startswith(("used_just_now-", "live-"))),
    }


def test_the_worker_cleans_up_what_expired_and_keeps_what_lives(
    app: Any, database: Any, worker: Worker, tenant_factory: Any
) -> None:
    from signoff.worker.app import enqueue

    seeded = _seed(database, tenant_factory())
    everything = {name for names in seeded.values() for name in names}
    assert _present(database, seeded) == everything

    with app.app_context():
        assert enqueue(app, "signoff.cleanup")
    kept = _kept(seeded)
    deadline = time.monotonic() + 30
    while _present(database, seeded) != kept and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _present(database, seeded) == kept, worker.log_text()[-3000:]


def test_a_superseded_sign_up_link_forgets_its_password_hash(app: Any, database: Any) -> None:
    from signoff.extensions import db
    from signoff.tenancy import account_tokens as tokens

    email = f"{uuid.uuid4().hex[:10]}@supersede.example"
    with app.app_context():
        for n in range(2):
            tokens.issue(
                db.session,
                purpose=tokens.SIGNUP,
                email=email,
                payload={"organisation": f"Org {n}", "password_hash": f"hash-{n}"},
            )
            db.session.commit()
        db.session.remove()
    with database.connect("admin") as conn:
        rows = conn.execute(
            "SELECT payload, used_at IS NOT NULL FROM account_token WHERE email = %s "
            "ORDER BY created_at",
            (email,),
        ).fetchall()
    assert rows == [
        ({"organisation": "Org 0"}, True),  # superseded: its password hash is gone
        ({"organisation": "Org 1", "password_hash": "hash-1"}, False),
    ]


def test_the_cronjob_commands_run_the_same_jobs(
    app: Any, database: Any, redis_url: str, redis_prefix: str, tenant_factory: Any
) -> None:
    """``signoff cleanup`` and ``signoff notifications digests``: what the chart's
    CronJobs run when there is no beat."""
    import subprocess
    import sys

    from tests.integration.worker.conftest import worker_env

    seeded = _seed(database, tenant_factory())
    env = worker_env(
        database,
        broker_url=redis_url,
        redis_url=redis_url,
        queue=f"{redis_prefix}signoff",
        smtp_url="",
    )
    run = [sys.executable, "-m", "signoff.cli"]
    done = subprocess.run([*run, "cleanup"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "idempotency keys" in done.stdout and "account links" in done.stdout
    assert _present(database, seeded) == _kept(seeded)
    digests = subprocess.run(
        [*run, "notifications", "digests"], env=env, capture_output=True, text=True, timeout=120
    )
    assert digests.returncode == 0 and "digests written:" in digests.stdout, digests.stderr
