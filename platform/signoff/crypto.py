"""Secrets at rest: Fernet under keys derived (HKDF-SHA256) from ``SECRET_KEY``, one
per purpose, so a leaked ciphertext of one purpose is useless for another. Rotating
``SECRET_KEY`` voids them all (MFA enrolments, webhook secrets, Slack tokens)."""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

__all__ = ["InvalidToken", "decrypt", "encrypt", "fernet_for"]


@functools.lru_cache(maxsize=16)
def fernet_for(secret_key: str, *, salt: bytes, info: bytes) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _fernet(purpose: str) -> Fernet:
    return fernet_for(
        str(current_app.config["SECRET_KEY"]), salt=b"signoff-secrets", info=purpose.encode()
    )


def encrypt(value: str, *, purpose: str) -> str:
    return _fernet(purpose).encrypt(value.encode()).decode()


def decrypt(token: str, *, purpose: str) -> str:
    """The plain text; raises :class:`InvalidToken` when ``SECRET_KEY`` changed."""
    return _fernet(purpose).decrypt(token.encode()).decode()
