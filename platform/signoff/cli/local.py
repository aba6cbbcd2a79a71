"""How ``signoff`` commands find the quick start's embedded servers.

``signoff demo`` writes ``<data dir>/quickstart.json`` (mode 0600) while it runs: the
addresses of its embedded PostgreSQL (app and owner roles), Valkey and SMTP servers, its
public URL and the secrets it keeps in the data dir; it removes the file when it stops.
Any other ``signoff`` command run with no ``SIGNOFF_DATABASE_URL`` reads that file from
the data dir (``SIGNOFF_DATA_DIR``, else ``./var``, as ``signoff demo``) and uses those
settings for whatever the environment does not set, so ``signoff tenants list`` or
``signoff create-operator`` work beside a running quick start with no variables set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask

from signoff.config import ENV_KEYS, setting

QUICKSTART_FILE = "quickstart.json"
DEFAULT_DATA_DIR = "var"
#: Config keys the quick start shares with other commands.
SHARED = (
    "SQLALCHEMY_DATABASE_URI",
    "SIGNOFF_MIGRATION_DATABASE_URL",
    "SIGNOFF_REDIS_URL",
    "SIGNOFF_SMTP_URL",
    "SIGNOFF_DEV_MAILBOX",
    "SIGNOFF_BASE_URL",
    "SECRET_KEY",
    "SIGNOFF_AUDIT_KEY",
)
_ENV_OF = {cfg: env for env, cfg in ENV_KEYS.items()}


def data_dir() -> Path:
    return Path(setting("SIGNOFF_DATA_DIR") or DEFAULT_DATA_DIR).expanduser().resolve()


def write_quickstart_file(directory: Path, config: Mapping[str, Any]) -> Path:
    path = directory.expanduser().resolve() / QUICKSTART_FILE
    body = {"pid": os.getpid(), **{k: config[k] for k in SHARED if config.get(k)}}
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(body, indent=2), encoding="utf-8")
    return path


def forget_quickstart_file(directory: Path) -> None:
    path = directory.expanduser().resolve() / QUICKSTART_FILE
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def quickstart_config() -> dict[str, Any]:
    """The running quick start's settings for what the environment leaves unset; empty
    when ``SIGNOFF_DATABASE_URL`` is set or the data dir holds no quick start."""
    if setting("SIGNOFF_DATABASE_URL"):
        return {}
    path = data_dir() / QUICKSTART_FILE
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{path} cannot be read: {exc}") from exc
    pid = int(found.get("pid") or 0)
    if not pid or not _alive(pid):
        raise click.ClickException(
            f"the quick start that wrote {path} is not running: start it (scripts/run), "
            "or set SIGNOFF_DATABASE_URL"
        )
    return {k: found[k] for k in SHARED if k in found and not setting(_ENV_OF.get(k, k))}


def quickstart_setting(config_key: str) -> str | None:
    """One setting: the environment's, else the running quick start's."""
    env = _ENV_OF.get(config_key, config_key)
    value = setting(env)
    if value is not None:
        return value
    found = quickstart_config().get(config_key)
    return str(found) if found else None


def cli_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """``create_app`` for a command: the environment, the running quick start's settings
    for what it leaves unset, then ``overrides``."""
    from signoff.app import create_app

    return create_app({**quickstart_config(), **(overrides or {})})
