"""One password-hashing helper: FAB's method in production, the configured one in tests."""

from __future__ import annotations

from flask import Flask
from werkzeug.security import check_password_hash

from signoff.config import load_config
from signoff.security.passwords import hash_password


def _app(**overrides: object) -> Flask:
    app = Flask(__name__)
    app.config.update(load_config(overrides, environ={}))
    return app


def test_production_configuration_hashes_with_scrypt():
    """Nothing in the defaults makes hashing cheap: the product uses FAB's scrypt."""
    with _app().app_context():
        hashed = hash_password("a long enough password")
    assert hashed.startswith("scrypt:")
    assert check_password_hash(hashed, "a long enough password")
    assert not check_password_hash(hashed, "another password")


def test_the_configured_method_and_salt_length_are_honoured():
    app = _app(FAB_PASSWORD_HASH_METHOD="pbkdf2:sha256:1", FAB_PASSWORD_HASH_SALT_LENGTH=8)
    with app.app_context():
        hashed = hash_password("a long enough password")
    method, salt, _ = hashed.split("$")
    assert method == "pbkdf2:sha256:1" and len(salt) == 8
    assert check_password_hash(hashed, "a long enough password")
