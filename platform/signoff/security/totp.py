"""TOTP arithmetic (RFC 6238; SHA-1, 6 digits, 30 s steps), the secret at rest
(Fernet under a key derived from ``SECRET_KEY``) and recovery codes: no database,
no HTTP. The service that stores and checks them is :mod:`signoff.security.mfa`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

from signoff.crypto import fernet_for
from signoff.errors import MfaError

PERIOD = 30
DIGITS = 6
#: Steps of clock drift accepted either side of the server's current step.
WINDOW = 1
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


# --- TOTP arithmetic (pure) -------------------------------------------------------------


def new_secret() -> str:
    """A fresh base32 secret of 160 bits (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def make_totp(
    secret: str, *, digits: int = DIGITS, digest: Any = None, interval: int = PERIOD
) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=digits, digest=digest or hashlib.sha1, interval=interval)


def time_step(for_time: float, interval: int = PERIOD) -> int:
    return int(for_time // interval)


def code_at(secret: str, for_time: float, *, digits: int = DIGITS) -> str:
    """The code an authenticator shows at unix time ``for_time``."""
    return make_totp(secret, digits=digits).generate_otp(time_step(for_time))


def normalize_code(code: str) -> str:
    return "".join(ch for ch in str(code) if not ch.isspace() and ch != "-")


def matching_steps(secret: str, code: str, *, now: float, window: int = WINDOW) -> list[int]:
    """The time steps around ``now`` whose code is ``code`` (constant-time compares)."""
    code = normalize_code(code)
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return []
    totp = make_totp(secret)
    current = time_step(now)
    return [
        step
        for step in range(current - window, current + window + 1)
        if hmac.compare_digest(totp.generate_otp(step), code)
    ]


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return make_totp(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The otpauth URI as a QR code, an SVG ``data:`` URI (no external service)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


# --- the secret at rest -----------------------------------------------------------------


def _fernet() -> Fernet:
    # Salt and info of the first release: existing enrolments stay readable.
    return fernet_for(
        str(current_app.config["SECRET_KEY"]), salt=b"signoff-mfa", info=b"totp-secret-v1"
    )


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise MfaError(
            409,
            "mfa_unreadable",
            "The authenticator cannot be read (the server key changed); ask an admin to reset it",
        ) from exc


# --- recovery codes ---------------------------------------------------------------------


def generate_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalize_recovery_code(code: str) -> str:
    return "".join(ch for ch in str(code).lower() if ch.isalnum())
