"""Password hashes: the one helper every account-creating path uses (sign-up,
invitations, manifests, operator creation), so ``FAB_PASSWORD_HASH_METHOD`` and
``FAB_PASSWORD_HASH_SALT_LENGTH`` mean the same everywhere as in FAB itself."""

from __future__ import annotations

from flask import current_app
from werkzeug.security import generate_password_hash

#: FAB's defaults when the configuration does not name a method.
DEFAULT_METHOD = "scrypt"
DEFAULT_SALT_LENGTH = 16


def hash_password(password: str) -> str:
    cfg = current_app.config
    return generate_password_hash(
        password,
        method=cfg.get("FAB_PASSWORD_HASH_METHOD", DEFAULT_METHOD),
        salt_length=int(cfg.get("FAB_PASSWORD_HASH_SALT_LENGTH", DEFAULT_SALT_LENGTH)),
    )
