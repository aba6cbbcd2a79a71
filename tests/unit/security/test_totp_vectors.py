"""TOTP arithmetic against RFC 6238 Appendix B, and the pure helpers around it."""

from __future__ import annotations

import base64
import hashlib

import pyotp
import pytest
from flask import Flask

from signoff.security import mfa, mfa_web, totp

SEEDS = {
    "sha1": (b"12345678901234567890", hashlib.sha1),
    "sha256": (b"12345678901234567890123456789012", hashlib.sha256),
    "sha512": (
        b"1234567890123456789012345678901234567890123456789012345678901234",
        hashlib.sha512,
    ),
}

#: RFC 6238 Appendix B: (unix time, T as hex, sha1, sha256, sha512), 8 digits.
VECTORS = [
    (59, "0000000000000001", "94287082", "46119246", "90693936"),
    (1111111109, "00000000023523EC", "07081804", "68084774", "25091201"),
    (1111111111, "00000000023523ED", "14050471", "67062674", "99943326"),
    (1234567890, "000000000273EF07", "89005924", "91819424", "93441116"),
    (2000000000, "0000000003F940AA", "69279037", "90698825", "38618901"),
    (20000000000, "0000000027BC86AA", "65353130", "77737706", "47863826"),
]


def b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode()


@pytest.mark.parametrize("when,step_hex,sha1,sha256,sha512", VECTORS)
def test_rfc6238_vectors_with_pyotp(when, step_hex, sha1, sha256, sha512):
    expected = {"sha1": sha1, "sha256": sha256, "sha512": sha512}
    for name, (seed, digest) in SEEDS.items():
        totp = pyotp.TOTP(b32(seed), digits=8, digest=digest, interval=30)
        assert totp.at(when) == expected[name], (name, when)


@pytest.mark.parametrize("when,step_hex,sha1,sha256,sha512", VECTORS)
def test_rfc6238_vectors_with_signoffs_totp(when, step_hex, sha1, sha256, sha512):
    """The factory and step arithmetic Signoff verifies codes with."""
    assert totp.time_step(when) == int(step_hex, 16)
    expected = {"sha1": sha1, "sha256": sha256, "sha512": sha512}
    for name, (seed, digest) in SEEDS.items():
        otp = totp.make_totp(b32(seed), digits=8, digest=digest)
        assert otp.generate_otp(totp.time_step(when)) == expected[name], (name, when)


def test_six_digit_codes_are_the_low_digits_of_the_sha1_vector():
    # RFC 4226 truncation: a 6-digit code is the 8-digit value mod 10**6.
    secret = b32(SEEDS["sha1"][0])
    for when, _step, sha1, _b, _c in VECTORS:
        assert totp.code_at(secret, when) == sha1[-6:]


def test_matching_steps_accepts_one_step_of_drift_either_way_only():
    secret = totp.new_secret()
    now = 1_700_000_015.0  # the middle of a step
    step = totp.time_step(now)
    for offset in (-1, 0, 1):
        code = totp.make_totp(secret).generate_otp(step + offset)
        assert step + offset in totp.matching_steps(secret, code, now=now)
    for offset in (-3, -2, 2, 3):
        code = totp.make_totp(secret).generate_otp(step + offset)
        assert step + offset not in totp.matching_steps(secret, code, now=now)


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "abcdef", "12 34 5x", "٣٣٣٣٣٣"])
def test_malformed_codes_never_match(bad):
    assert totp.matching_steps(totp.new_secret(), bad, now=1_700_000_000.0) == []


def test_codes_may_carry_a_space_or_dash():
    secret = totp.new_secret()
    code = totp.code_at(secret, 1_700_000_000.0)
    spaced = f"{code[:3]} {code[3:]}"
    dashed = f"{code[:3]}-{code[3:]}"
    assert totp.matching_steps(secret, spaced, now=1_700_000_000.0)
    assert totp.matching_steps(secret, dashed, now=1_700_000_000.0)


def test_new_secrets_are_160_bit_base32_and_distinct():
    secrets_ = {totp.new_secret() for _ in range(50)}
    assert len(secrets_) == 50
    for s in secrets_:
        assert len(base64.b32decode(s)) == 20


def test_provisioning_uri_and_qr():
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "ann@example.com", "Signoff")
    assert uri.startswith(
        "otpauth://totp/Signoff:ann%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    )
    assert "issuer=Signoff" in uri
    qr = totp.qr_data_uri(uri)
    assert qr.startswith("data:image/svg+xml")


def test_recovery_codes_format_and_normalization():
    codes = totp.generate_recovery_codes()
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert len(code) == 11 and code[5] == "-"
        assert set(code.replace("-", "")) <= set(totp.RECOVERY_ALPHABET)
    assert totp.normalize_recovery_code(" ABCDE-fghjk ") == "abcdefghjk"


def test_secret_encryption_round_trip_and_key_binding():
    app = Flask("t")
    app.config["SECRET_KEY"] = "one-key"
    with app.app_context():
        token = totp.encrypt_secret("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
        assert "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" not in token
        assert totp.decrypt_secret(token) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    other = Flask("u")
    other.config["SECRET_KEY"] = "another-key"
    with other.app_context(), pytest.raises(mfa.MfaError) as exc:
        totp.decrypt_secret(token)
    assert exc.value.code == "mfa_unreadable"


@pytest.mark.parametrize(
    "target,expected",
    [
        ("/t/acme/requests/1", "/t/acme/requests/1"),
        ("/t/acme/?q=1", "/t/acme/?q=1"),
        (None, "/t/acme/"),
        ("https://evil.example/t/acme/", "/t/acme/"),
        ("//evil.example/t/acme/", "/t/acme/"),
        ("/t/other/requests/1", "/t/acme/"),
        ("/\\evil.example", "/t/acme/"),
        ("javascript:alert(1)", "/t/acme/"),
        ("/t/acmeevil/", "/t/acme/"),
    ],
)
def test_safe_next_stays_inside_the_tenant_portal(target, expected):
    assert mfa_web.safe_next(target, "acme") == expected
