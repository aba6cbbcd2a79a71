"""Schemas of the MFA API (:mod:`signoff.api.mfa`).

The marshmallow classes validate the request bodies; the JSON schemas document
bodies and responses in the OpenAPI document (inline, as they always have been).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from signoff.errors import N_


class CodeSchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^\s*[0-9]{3}[\s-]?[0-9]{3}\s*$", error=N_("must be the 6-digit code")
        ),
        metadata={"description": "the 6-digit code the authenticator app shows"},
    )


class RecoveryCodeSchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^\s*[A-Za-z0-9]{5}[\s-]?[A-Za-z0-9]{5}\s*$",
            error=N_("must be a recovery code like abcde-12345"),
        ),
    )


class EnrollSchema(Schema):
    restart = fields.Boolean(load_default=True)


# --- documented JSON schemas ---------------------------------------------------------------


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object"}
    if required:
        out["required"] = required
    out["properties"] = properties
    return out


_CODES = {"type": "array", "items": {"type": "string"}}
_VERIFIED = {
    "mfa_verified": {"type": "boolean"},
    "verified_at": {"type": "string", "format": "date-time"},
    "expires_in": {"type": "integer"},
}

CODE_BODY = _object({"code": {"type": "string", "example": "123456"}}, ["code"])
RECOVERY_CODE_BODY = _object({"code": {"type": "string", "example": "abcde-fghjk"}}, ["code"])

STATUS = _object(
    {
        "enrolled": {"type": "boolean"},
        "pending": {"type": "boolean"},
        "recovery_codes_left": {"type": "integer"},
        "verified_at": {"type": "string", "format": "date-time", "nullable": True},
        "fresh": {"type": "boolean"},
        "timeout": {"type": "integer"},
    }
)
ENROLMENT = _object(
    {
        "secret": {"type": "string"},
        "otpauth_uri": {"type": "string"},
        "qr": {"type": "string", "description": "data:image/svg+xml URI"},
    }
)
CONFIRMED = _object({"recovery_codes": _CODES, **_VERIFIED})
VERIFIED = _object(dict(_VERIFIED))
RECOVERY_VERIFIED = _object({**_VERIFIED, "recovery_codes_left": {"type": "integer"}})
RECOVERY_CODES = _object({"recovery_codes": _CODES})
RESET = _object({"user_id": {"type": "integer"}, "had_authenticator": {"type": "boolean"}})
