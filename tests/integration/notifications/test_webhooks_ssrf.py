"""SSRF rules of outbound HTTP (signoff.notifications.http), at registration and at
delivery: refused addresses, no redirects, the resolved address pinned, timeouts and
a size cap. Traffic only ever goes to loopback receivers of this test.

The DNS-pinning tests wrap ``socket.getaddrinfo`` for one made-up name
(``hooks.signoff.test``) and pass every other lookup to the real resolver: it is the
only way to make a name answer differently on its second lookup (DNS rebinding)
without running a DNS server the system resolver would use."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from datetime import UTC, datetime, timedelta

import pytest

from signoff.notifications import http
from tests.integration.api.conftest import assert_error
from tests.integration.notifications.conftest import dispatch, register, webhook_rows

NAME = "hooks.signoff.test"

REFUSED_ADDRESSES = [
    ("127.0.0.1", "loopback"),
    ("127.9.9.9", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "metadata"),
    ("169.254.1.1", "link-local"),
    ("100.64.0.1", "reserved"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 (an address refused, never bound)
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fe80::1", "link-local"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "metadata"),
    ("2002:a00:1::", "private"),  # 6to4 around 10.0.0.1
]


@pytest.mark.parametrize(("address", "why"), REFUSED_ADDRESSES)
def test_non_public_addresses_are_refused_unless_allowed(address, why):
    with pytest.raises(http.OutboundRefused) as refused:
        http.check_address(address, ())
    assert why in refused.value.message
    nets = http.allowed_networks(f"{address}/128" if ":" in address else f"{address}/32")
    http.check_address(address, nets)  # explicitly allowed: no error


def test_public_addresses_pass_and_the_allow_list_is_strict():
    for public in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"):
        http.check_address(public, ())  # checked only: nothing is sent
    assert http.allowed_networks(" 127.0.0.1/32 , not-a-cidr,,10.0.0.0/8") == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
    )
    with pytest.raises(http.OutboundRefused):
        http.check_address("127.0.0.2", http.allowed_networks("127.0.0.1/32"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.0.0.1/",
        "http://192.168.0.10:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "http://2130706433/",  # 127.0.0.1 as one number
    ],
)
def test_registration_refuses_internal_targets(api_a, url, app, monkeypatch):
    monkeypatch.setitem(app.config, "SIGNOFF_OUTBOUND_ALLOW", "")
    body = assert_error(api_a.post("/api/v1/webhooks/", json={"url": url}), 422, field="url")
    assert body["code"] in ("url_refused", "url_unresolvable")


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("ftp://example.com/", "url"),
        ("file:///etc/passwd", "url"),
        ("gopher://127.0.0.1:25/", "url"),
        ("http://user:secret@127.0.0.1/", "url"),
        ("http:///nohost", "url"),
        ("http://127.0.0.1:99999/", "url"),
        ("http://exa mple.com/", "url"),
        ("http://does-not-exist.invalid/", "url"),
    ],
)
def test_registration_refuses_bad_urls_naming_the_field(api_a, allow, url, field):
    body = assert_error(api_a.post("/api/v1/webhooks/", json={"url": url}), 422, field=field)
    assert body["message"]


def test_the_allow_list_admits_only_what_it_names(api_a, allow, receivers):
    allow("127.0.0.1/32")
    r = receivers()
    register(api_a, r)  # allowed
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", f"http://[::1]:{r.port}/"):
        assert_error(api_a.post("/api/v1/webhooks/", json={"url": url}), 422, field="url")


def test_refused_at_delivery_when_no_longer_allowed(app, api_a, allow, receivers, database):
    r = receivers()
    ep = register(api_a, r, event_types=["request.submitted"])
    allow("")  # the platform setting changed after registration
    api_a.submit(5000)
    dispatch(app, api_a.tenant)
    [row] = webhook_rows(database, api_a.tenant, ep["id"])
    # Refused before connecting: final at once (no retries against a refused address).
    assert row["status"] == "dead" and row["attempts"] == 1 and "loopback" in row["last_error"]
    assert r.received == []


def test_ipv6_loopback_needs_its_own_allow_entry(app, api_a, allow, receivers, database):
    allow("::1/128")
    r6 = receivers(host="::1")
    ep = register(api_a, r6)
    assert api_a.post(f"/api/v1/webhooks/{ep['id']}/test").get_json()["status"] == "sent"
    assert r6.received[-1].error is None and r6.received[-1].peer == "::1"
    allow("127.0.0.1/32")
    failed = api_a.post(f"/api/v1/webhooks/{ep['id']}/test").get_json()
    assert failed["status"] == "dead" and "loopback" in failed["last_error"]
    assert len(r6.received) == 1


def test_redirects_are_not_followed(app, api_a, allow, receivers, database):
    allow("127.0.0.0/8")
    elsewhere = receivers(host="127.0.0.2")
    redirecting = receivers(status=302, location=elsewhere.url)
    ep = register(api_a, redirecting, event_types=["request.submitted"])
    api_a.submit(5000)
    dispatch(app, api_a.tenant)
    [row] = webhook_rows(database, api_a.tenant, ep["id"])
    assert row["status"] == "pending" and row["response_code"] == 302
    assert "redirects are not followed" in row["last_error"]
    assert len(redirecting.received) == 1 and elsewhere.received == []


class _Dns:
    """``socket.getaddrinfo`` for NAME answering from ``answers`` (one per lookup, the
    last repeated); every other name goes to the real resolver."""

    def __init__(self, monkeypatch, answers):
        self.answers = list(answers)
        self.lookups = 0
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            if host != NAME:
                return real(host, port, *args, **kwargs)
            self.lookups += 1
            address = self.answers[min(self.lookups, len(self.answers)) - 1]
            return real(address, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_the_resolved_address_is_pinned_against_dns_rebinding(
    app, api_a, allow, receivers, monkeypatch
):
    allow("127.0.0.0/8")
    pinned = receivers(host="127.0.0.1")
    rebound = receivers(host="127.0.0.2", port=pinned.port)  # same port, other address
    url = f"http://{NAME}:{pinned.port}/hook"
    dns = _Dns(monkeypatch, ["127.0.0.1"])
    ep = register(api_a, pinned, url=url)
    rebound.secret = pinned.secret
    # From the delivery's first lookup on, the name answers 127.0.0.1 once, then 127.0.0.2.
    dns.answers, dns.lookups = ["127.0.0.1", "127.0.0.2"], 0
    result = api_a.post(f"/api/v1/webhooks/{ep['id']}/test").get_json()
    assert result["status"] == "sent", result
    assert dns.lookups == 1  # resolved once; the connection went to that address
    assert len(pinned.received) == 1 and rebound.received == []
    got = pinned.received[0]
    assert got.headers["host"] == f"{NAME}:{pinned.port}" and got.error is None


def test_a_name_rebound_to_a_refused_address_is_refused_at_delivery(
    app, api_a, allow, receivers, monkeypatch
):
    allow("127.0.0.1/32")
    good = receivers(host="127.0.0.1")
    other = receivers(host="127.0.0.2", port=good.port)
    dns = _Dns(monkeypatch, ["127.0.0.1"])
    ep = register(api_a, good, url=f"http://{NAME}:{good.port}/hook")
    dns.answers, dns.lookups = ["127.0.0.2"], 0
    result = api_a.post(f"/api/v1/webhooks/{ep['id']}/test").get_json()
    assert result["status"] == "dead" and "resolves to a loopback address" in result["last_error"]
    assert good.received == [] and other.received == []


def test_timeouts_and_the_response_size_cap(receivers):
    nets = http.allowed_networks("127.0.0.1/32")
    big = receivers(reply_bytes=1024 * 1024)
    resp = http.post(big.url, b"{}", {"Content-Type": "application/json"}, allow=nets)
    assert resp.status == 200 and resp.truncated and len(resp.body) == http.MAX_RESPONSE_BYTES
    small = http.post(big.url, b"{}", {}, allow=nets, max_bytes=10)
    assert small.truncated and len(small.body) == 10
    slow = receivers(delay=2.0)
    with pytest.raises(http.OutboundTimeout):
        http.post(slow.url, b"{}", {}, allow=nets, read_timeout=0.3)
    # Nothing listens on the port any more: a connection error, retryable.
    big.stop()
    with pytest.raises(http.OutboundUnreachable) as unreachable:
        http.post(big.url, b"{}", {}, allow=nets)
    assert not unreachable.value.permanent


def _self_signed(tmp_path, name):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_https_connects_to_the_pinned_address_with_the_original_name(
    tmp_path, receivers, monkeypatch
):
    cert, key = _self_signed(tmp_path, NAME)
    server = receivers(host="127.0.0.1")
    sni: list[str | None] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.sni_callback = lambda sock, name, _ctx: sni.append(name)
    server._server.socket = ctx.wrap_socket(server._server.socket, server_side=True)
    dns = _Dns(monkeypatch, ["127.0.0.1", "127.0.0.2"])
    nets = http.allowed_networks("127.0.0.1/32")
    resp = http.post(f"https://{NAME}:{server.port}/hook", b"{}", {}, allow=nets, ca_certs=cert)
    assert resp.status == 200 and resp.address == "127.0.0.1" and dns.lookups == 1
    assert sni == [NAME] and server.received[0].headers["host"] == f"{NAME}:{server.port}"
    # A certificate for another name is refused (the pin does not weaken TLS).
    other_cert, _ = _self_signed(tmp_path, "other.signoff.test")
    dns.lookups = 0
    with pytest.raises(http.OutboundUnreachable):
        http.post(f"https://{NAME}:{server.port}/", b"{}", {}, allow=nets, ca_certs=other_cert)


def test_a_redirect_is_retried_like_any_failure_never_followed(
    app, api_a, allow, receivers, database
):
    """A 3xx is retried like any failure (the receiver may fix its URL), never followed."""
    allow("127.0.0.1/32")
    moved = receivers(status=301, location="http://169.254.169.254/")
    ep = register(api_a, moved, event_types=["request.submitted"])
    api_a.submit(5000)
    now = datetime.now(UTC)
    dispatch(app, api_a.tenant, now=now)
    [row] = webhook_rows(database, api_a.tenant, ep["id"])
    dispatch(app, api_a.tenant, now=row["next_attempt_at"])
    [row] = webhook_rows(database, api_a.tenant, ep["id"])
    assert row["attempts"] == 2 and row["response_code"] == 301 and len(moved.received) == 2
