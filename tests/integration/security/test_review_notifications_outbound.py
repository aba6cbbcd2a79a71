"""Security review of outbound HTTP that a tenant aims (webhooks, Slack's
``response_url``) with ``SIGNOFF_OUTBOUND_ALLOW`` empty, as in production.

Failing tests here prove a vulnerability (see each docstring); passing ones document
an attack that is refused and was not covered elsewhere."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from signoff.notifications import http
from tests.fixtures.tenants import fresh_client
from tests.fixtures.workflows import spec_expense
from tests.integration.api.conftest import Api, assert_error
from tests.integration.notifications.slack_helpers import (
    FakeSlack,
    buttons,
    click_body,
    configure,
    connect,
    dispatch,
    link,
    new_secret,
    post_click,
    signed_headers,
    submit,
)
from tests.integration.workflow.conftest import save

INTERNAL_NAME = "billing-db.corp.signoff.test"
INTERNAL_ADDRESS = "10.20.30.40"


@pytest.fixture
def api(app: Any, tenant_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Api:
    """A tenant admin's API, with the production outbound policy (nothing allowed)."""
    tenant = tenant_factory()
    save(app, tenant, "expense_approval", spec_expense())
    monkeypatch.setitem(app.config, "SIGNOFF_OUTBOUND_ALLOW", "")
    return Api(fresh_client(app), tenant)


@pytest.fixture
def internal_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """``INTERNAL_NAME`` resolves to a private address (as an internal name would on the
    platform's network); every other name goes to the real resolver."""
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == INTERNAL_NAME:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (INTERNAL_ADDRESS, port or 80))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


# --- findings -----------------------------------------------------------------------------


def test_ipv6_site_local_addresses_are_refused(api: Api) -> None:
    """Review finding (low), fixed.
    ``http.forbidden_reason`` relies on ``ipaddress``' ``is_private`` /
    ``is_global``, which treat the deprecated IPv6 site-local range ``fec0::/10`` (the
    old IPv6 equivalent of RFC 1918, still routed inside some networks) as public. A
    tenant admin can aim webhooks at ``http://[fec0::...]/``. Fix: refuse
    ``ip.is_site_local`` (and keep an explicit deny list next to the library's)."""
    resp = api.post("/api/v1/webhooks/", json={"url": "http://[fec0::1]/hook"})
    assert resp.status_code == 422, f"registered: {resp.get_json()}"
    with pytest.raises(http.OutboundRefused):
        http.check_address("fec0::1", ())


def test_a_refused_url_does_not_reveal_what_an_internal_name_resolves_to(
    api: Api, internal_dns: None
) -> None:
    """Review finding (low), fixed.
    the 422 for a refused URL says ``"10.20.30.40 is a private
    address"``: a tenant admin resolves the platform's internal DNS names one request
    at a time (the API, the admin page and Slack's webhook field alike), and tells
    internal names from unknown ones (``url_refused`` vs ``url_unresolvable``). Fix:
    one generic message and code ("this URL is not allowed"), with the address only in
    the server log."""
    resp = api.post("/api/v1/webhooks/", json={"url": f"http://{INTERNAL_NAME}/hook"})
    body = assert_error(resp, 422, field="url")
    assert INTERNAL_ADDRESS not in body["message"], body


def _trickling_server(total: int, pause: float) -> tuple[str, Callable[[], None], threading.Event]:
    """A receiver that answers 200 at once, then sends its body one byte per ``pause``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()

    def run() -> None:
        server.settimeout(10)
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode())
            for _ in range(total):
                if stop.wait(pause):
                    return
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    threading.Thread(target=run, daemon=True).start()
    port = server.getsockname()[1]

    def close() -> None:
        stop.set()
        server.close()

    return f"http://127.0.0.1:{port}/hook", close, stop


def test_a_trickling_receiver_cannot_hold_a_delivery_past_its_deadline() -> None:
    """Review finding (medium, availability across tenants), fixed.
    ``http.post`` checks ``deadline``
    only between reads, and each ``resp.read(8192)`` blocks until 8 KiB or the end of
    the body arrive, with ``read_timeout`` applying per byte. A receiver that sends a
    byte every few seconds keeps one delivery going for up to 8192 x 10 s, about 23 hours
    per read. A tenant admin's endpoint (``/webhooks/<id>/test`` runs in the web
    request; deliveries run in the shared worker) or a forged Slack ``response_url``
    ties up web and worker threads for every tenant. Fix: enforce the deadline on the
    whole exchange (a socket timeout shrinking to the time left, or reading with
    ``resp.read1``/``stream(amt, decode_content=False)`` and checking the clock)."""
    url, close, _ = _trickling_server(total=24, pause=0.25)
    nets = http.allowed_networks("127.0.0.1/32")
    started = time.monotonic()
    try:
        with contextlib.suppress(http.OutboundError):
            http.post(url, b"{}", {}, allow=nets, read_timeout=1.0, deadline=1.0)
        elapsed = time.monotonic() - started
    finally:
        close()
    # deadline (1 s) + one read timeout (1 s) + slack: anything longer is unbounded.
    assert elapsed < 3.0, f"a 1 s deadline held the request for {elapsed:.1f} s"


# --- refused attacks (coverage the existing tests lack) -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://0177.0.0.1/",  # octal
        "http://0x7f.0.0.1/",  # hexadecimal
        "http://0x7f000001/",  # one hexadecimal number
        "http://127.1/",  # short form
        "http://0/",  # 0.0.0.0
        "http://[::7f00:1]/",  # IPv4-compatible IPv6
        "http://[::ffff:a9fe:a9fe]/",  # mapped metadata address, hex form
        "http://[0:0:0:0:0:ffff:10.0.0.1]/",  # mapped private, long form
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
        "http://[fe80::1%25eth0]/",  # link-local with a zone
        "http://LOCALHOST./",  # upper case, trailing dot
        "http://127.0.0.1.nip.invalid@169.254.169.254/",  # userinfo trick
        "http://example.com@127.0.0.1/",
        "http://example.com%40127.0.0.1/",
        "http://127.0.0.1#@example.com/",
        "http://example.com\\@127.0.0.1/",
        "HTTP://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254:80/",
        "http://[::ffff:169.254.169.254]:80/",
    ],
)
def test_more_notations_of_internal_addresses_are_refused(api: Api, url: str) -> None:
    resp = api.post("/api/v1/webhooks/", json={"url": url})
    body = assert_error(resp, 422, field="url")
    assert body["code"] in ("url_refused", "url_unresolvable"), body


@pytest.fixture(scope="module")
def review_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def test_a_forged_slack_click_cannot_aim_its_response_url_inside(
    app: Any, tenant_factory: Any, monkeypatch: pytest.MonkeyPatch, review_slack: FakeSlack
) -> None:
    """Whoever holds a tenant's signing secret (its admin) can sign any payload; its
    ``response_url`` still goes through the outbound policy, so it cannot make the web
    server POST to loopback or the metadata address."""
    configure(app, monkeypatch, review_slack)  # loopback allowed while Slack is connected
    tenant = tenant_factory()
    save(app, tenant, "expense_approval", spec_expense())
    secret = new_secret()
    connect(app, tenant, secret)
    link(app, tenant, "manager", "U0REVIEWMGR")
    submit(app, tenant)
    dispatch(app, tenant)
    [message, *_] = review_slack.messages_to("U0REVIEWMGR")
    approve = buttons(message)["signoff_approve"]
    monkeypatch.setitem(app.config, "SIGNOFF_OUTBOUND_ALLOW", "")  # production
    client = fresh_client(app)
    for target in (
        f"{review_slack.url}/response/internal",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:6379/",
    ):
        for user, button in (("U0REVIEWMGR", approve), ("U0NOTLINKED", approve)):
            body = click_body(user, button, response_url=target)
            resp = post_click(client, tenant.slug, body, signed_headers(secret, body))
            assert resp.status_code == 200
    assert review_slack.posts("/response/") == []
