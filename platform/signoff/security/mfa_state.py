"""When the current user last passed a TOTP check (the MFA step-up hook).

Until MFA enrolment exists, nobody has a verification, so a step that requires
MFA cannot be approved (the safe default).
"""

from __future__ import annotations

from datetime import datetime


def mfa_verified_at(user_id: int) -> datetime | None:
    return None
