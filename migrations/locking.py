"""Locks for migrations that change tables the running app uses.

A migration that alters several existing tables one after another takes each table's
lock when it reaches it, while requests take theirs in their own order (FAB's user
load reads ``ab_user``, then ``ab_user_role``, ``ab_role``, ...). Each side then holds
a table the other waits for: PostgreSQL aborts one of them with "deadlock detected".

``lock_tables(...)`` is therefore the first statement of such a migration. It takes an
``ACCESS EXCLUSIVE`` lock on every table the migration will touch (altered, dropped,
or referenced by a foreign key it adds or drops), in one order for every migration
(``ORDER``: the order in which requests read them, then by name), inside a savepoint,
waiting at most ``ATTEMPT_MS`` per attempt. An attempt that does not get every lock
rolls back to the savepoint (releasing what it got) and tries again, so the
migration never holds one table while it waits long for another: a request that
waits on the migration waits at most one attempt, shorter than PostgreSQL's
``deadlock_timeout`` (1 s). The attempts stop when the session's ``lock_timeout``
(``signoff db upgrade --lock-timeout``) is used up, with PostgreSQL's
lock-not-available error (55P03); ``signoff db upgrade --retries`` then runs the
migration again. A session without ``lock_timeout`` keeps trying, as a plain ``LOCK``
would wait. After the locks, the migration's statements wait for nothing the
app holds.

Migrations import this module as ``locking`` (``migrations/env.py`` puts this
directory on ``sys.path``). It builds no SQL from strings: the ``LOCK TABLE``
statement is written by PostgreSQL itself (``format`` with ``%I``).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

#: Tables in the order requests read them (FAB's user load, then the tenant and its
#: membership); every other table follows, by name.
ORDER = (
    "ab_user",
    "ab_user_role",
    "ab_role",
    "ab_permission_view_role",
    "ab_permission_view",
    "ab_permission",
    "ab_view_menu",
    "ab_user_group",
    "ab_group",
    "ab_group_role",
    "ab_api_key",
    "ab_register_user",
    "tenant",
    "tenant_membership",
)

#: Longest wait for the locks in one attempt, in milliseconds: below PostgreSQL's
#: default deadlock_timeout (1 s), so a request queued behind an attempt is released
#: before its own deadlock check runs.
ATTEMPT_MS = 200

_STATEMENT = sa.text(
    "SELECT format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', "
    "string_agg(format('public.%I', name), ', ' ORDER BY ord)) "
    "FROM unnest(CAST(:tables AS text[])) WITH ORDINALITY AS t(name, ord)"
)
_LOCK_TIMEOUT = sa.text(
    "SELECT setting, CASE WHEN setting = '0' THEN NULL ELSE setting::bigint END "
    "FROM pg_settings WHERE name = 'lock_timeout'"
)
_SET_LOCK_TIMEOUT = sa.text("SELECT set_config('lock_timeout', :value, true)")
_WAITING_FOR_LOCK = "55P03"


def ordered(tables: tuple[str, ...] | list[str]) -> list[str]:
    """``tables`` without repeats, in the one lock order of every migration."""
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(set(tables), key=lambda name: (rank.get(name, len(ORDER)), name))


def lock_tables(*tables: str) -> None:
    """Take ``ACCESS EXCLUSIVE`` locks on ``tables`` (schema ``public``) before anything
    else in this migration's transaction, in the order of :func:`ordered`."""
    names = ordered(list(tables))
    if not names:
        return
    bind = op.get_bind()
    statement = str(bind.execute(_STATEMENT, {"tables": names}).scalar_one())
    setting, budget_ms = bind.execute(_LOCK_TIMEOUT).one()
    # No lock_timeout in the session (0): keep trying, as a plain LOCK would wait.
    deadline = time.monotonic() + budget_ms / 1000 if budget_ms else None
    pause = 0.05
    while True:
        left_ms = ATTEMPT_MS if deadline is None else int((deadline - time.monotonic()) * 1000)
        savepoint = bind.begin_nested()
        try:
            bind.execute(_SET_LOCK_TIMEOUT, {"value": f"{max(1, min(ATTEMPT_MS, left_ms))}ms"})
            bind.execute(sa.text(statement))
        except sa.exc.OperationalError as exc:
            savepoint.rollback()  # releases the locks this attempt got
            if getattr(exc.orig, "sqlstate", None) != _WAITING_FOR_LOCK or left_ms <= 0:
                raise
            time.sleep(pause if deadline is None else min(pause, max(0.0, left_ms / 1000)))
            pause = min(pause * 2, 0.5)
            continue
        savepoint.commit()
        break
    # The migration's own statements wait as the session said (its lock_timeout).
    bind.execute(_SET_LOCK_TIMEOUT, {"value": f"{setting}ms"})
