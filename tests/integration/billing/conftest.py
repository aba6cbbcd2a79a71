"""Billing fixtures: localstripe (a stateful Stripe-compatible server from PyPI) started
as a subprocess on a free 127.0.0.1 port, an app with Stripe keys pointed at it, served
live so that localstripe delivers its signed webhooks to it. Stripe is never mocked.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import app_config

SECRET_KEY = "sk_test_signoff_billing"
PUBLISHABLE_KEY = "pk_test_signoff_billing"
WEBHOOK_SECRET = "whsec_signoff_test_secret"

#: Small limits so that tests reach them quickly.
TEST_PLANS: dict[str, Any] = {
    "free": {
        "name": "Free",
        "price": 0,
        "quotas": {"members": 9, "workflows": 2, "requests_per_month": 3, "attachment_mb": 10},
        "channels": {"slack": False, "webhooks": False},
    },
    "team": {
        "name": "Team",
        "price": 2900,
        "quotas": {
            "members": 50,
            "workflows": 10,
            "requests_per_month": 1000,
            "attachment_mb": 100,
        },
        "channels": {"slack": True, "webhooks": True},
    },
    "enterprise": {
        "name": "Enterprise",
        "price": 29900,
        "quotas": {"members": None, "workflows": None, "requests_per_month": None},
        "channels": {"slack": True, "webhooks": True},
    },
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def localstripe_command() -> str:
    found = shutil.which("localstripe") or str(Path(sys.executable).parent / "localstripe")
    if not Path(found).exists():
        pytest.fail(
            "the billing tests need localstripe (a test dependency: scripts/bootstrap installs it)",
            pytrace=False,
        )
    return found


@dataclass
class LocalStripe:
    url: str

    def post(self, path: str, data: dict[str, str] | None = None) -> Any:
        from urllib.parse import urlencode

        req = urllib.request.Request(  # noqa: S310 (loopback)
            self.url + path,
            data=urlencode(data or {}).encode(),
            headers={"Authorization": f"Bearer {SECRET_KEY}"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback)
            body = resp.read()
        return json.loads(body) if body else None


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    port = _free_port()
    proc = subprocess.Popen(
        [localstripe_command(), "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/js.stripe.com/v3/", timeout=1).read()  # noqa: S310
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"localstripe did not start on {url}", pytrace=False)
            time.sleep(0.1)
    try:
        yield LocalStripe(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class BillingServer:
    url: str
    app: Any
    stripe: LocalStripe


@pytest.fixture(scope="session")
def billing(
    database: Any, redis_url: str, redis_prefix: str, app: Any, localstripe: LocalStripe
) -> Iterator[BillingServer]:
    """An app with billing on (keys, localstripe), served live on 127.0.0.1 and
    registered as localstripe's webhook endpoint; the plans synced to localstripe."""
    from werkzeug.serving import make_server

    from signoff.app import create_app
    from signoff.billing.stripe_api import sync_plans

    live = create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}billing-{uuid.uuid4().hex[:6]}:",
            SIGNOFF_STRIPE_SECRET_KEY=SECRET_KEY,
            SIGNOFF_STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
            SIGNOFF_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            SIGNOFF_STRIPE_API_BASE=localstripe.url,
            SIGNOFF_BILLING_PLANS=TEST_PLANS,
            AUTH_RATE_LIMIT="1000 per 20 second",
        )
    )
    with live.app_context():
        sync_plans()
    server = make_server("127.0.0.1", 0, live, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="billing-server", daemon=True)
    thread.start()
    localstripe.post(
        "/_config/webhooks/signoff",
        {"url": f"{url}/billing/stripe/webhook", "secret": WEBHOOK_SECRET},
    )
    try:
        yield BillingServer(url=url, app=live, stripe=localstripe)
    finally:
        server.shutdown()
        thread.join(timeout=10)


def stripe_client(billing: BillingServer) -> Any:
    import stripe

    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": billing.stripe.url})


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (webhooks arrive ~1 s after the
    event in localstripe); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
