"""FAB's permission check from a per-process cache (docs/ARCHITECTURE.md §3).

FAB answers ``has_access(permission, view)`` with a query per check (and loads the
user's roles first). For a request whose caller was resolved by
:mod:`signoff.security.caller` (a token call), and for the signed-in user of a web page
or an API-key call (roles loaded with the user, the version read once per request:
``SecurityManager._has_view_access_loaded``), the answer comes instead from the set of
``(permission, view)`` pairs of the caller's FAB roles, read once per process and
kept under the key ``(tenant, role ids, permissions version)``. The version is
``public.permissions_version``, raised by triggers on FAB's role and permission tables
in the transaction that changes them (migration 0027: ``signoff db upgrade``'s sync,
the CLI, any edit), and read by the same statement that resolves the caller, so a
changed permission is a cache miss at the next request. The role ids are read at
every request too: a role taken from a user counts at once. The tenant is part of
the key although FAB's permissions are global, so no entry built for one tenant's
request ever answers another's.
"""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session, scoped_session

#: Entries kept per process before the oldest versions are dropped.
MAX_ENTRIES = 4096

_PERMISSIONS = text(
    "SELECT p.name AS permission, v.name AS view "
    "FROM ab_permission_view_role AS pvr "
    "JOIN ab_permission_view AS pv ON pv.id = pvr.permission_view_id "
    "JOIN ab_permission AS p ON p.id = pv.permission_id "
    "JOIN ab_view_menu AS v ON v.id = pv.view_menu_id "
    "WHERE pvr.role_id = ANY(:roles)"
)
_ROLE_NAMES = text("SELECT name FROM ab_role WHERE id = ANY(:roles)")

_PUBLIC = text(
    "SELECT p.name AS permission, v.name AS view "
    "FROM ab_role AS r "
    "JOIN ab_permission_view_role AS pvr ON pvr.role_id = r.id "
    "JOIN ab_permission_view AS pv ON pv.id = pvr.permission_view_id "
    "JOIN ab_permission AS p ON p.id = pv.permission_id "
    "JOIN ab_view_menu AS v ON v.id = pv.view_menu_id "
    "WHERE r.name = :name"
)

Key = tuple[uuid.UUID | None, tuple[int, ...] | str, int]


class Entry:
    __slots__ = ("pairs", "role_names")

    def __init__(self, pairs: frozenset[tuple[str, str]], role_names: frozenset[str]) -> None:
        self.pairs = pairs
        self.role_names = role_names


_cache: dict[Key, Entry] = {}
_lock = threading.Lock()


def permissions(
    session: Session | scoped_session[Session],
    *,
    tenant_id: uuid.UUID | None,
    role_ids: tuple[int, ...],
    version: int,
) -> Entry:
    """The FAB permissions of ``role_ids`` under permissions ``version``."""
    ids = tuple(sorted(role_ids))
    key: Key = (tenant_id, ids, version)
    found = _cache.get(key)
    if found is not None:
        return found
    roles = list(ids)
    pairs = frozenset(
        (str(row.permission), str(row.view))
        for row in session.execute(_PERMISSIONS, {"roles": roles})
    )
    names = frozenset(str(n) for n in session.execute(_ROLE_NAMES, {"roles": roles}).scalars())
    entry = Entry(pairs, names)
    _store(key, entry)
    return entry


def public_permissions(
    session: Session | scoped_session[Session],
    *,
    role_name: str,
    tenant_id: uuid.UUID | None,
    version: int,
) -> Entry:
    """The FAB permissions of the public role ``role_name`` under ``version``."""
    key: Key = (tenant_id, role_name, version)
    found = _cache.get(key)
    if found is not None:
        return found
    pairs = frozenset(
        (str(row.permission), str(row.view))
        for row in session.execute(_PUBLIC, {"name": role_name})
    )
    entry = Entry(pairs, frozenset({role_name}))
    _store(key, entry)
    return entry


def _store(key: Key, entry: Entry) -> None:
    with _lock:
        if len(_cache) >= MAX_ENTRIES:
            newest = max(k[2] for k in _cache)
            for old in [k for k in _cache if k[2] < newest]:
                del _cache[old]
            if len(_cache) >= MAX_ENTRIES:
                _cache.clear()
        _cache[key] = entry


def clear() -> None:
    """Forget every entry (tests)."""
    with _lock:
        _cache.clear()
