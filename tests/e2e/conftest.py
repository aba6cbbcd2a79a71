"""Real-browser tests: Playwright driving Debian's Chromium against a live server.

The app runs with werkzeug's ``make_server`` in a thread on a free 127.0.0.1 port,
with CSRF **on** (as in production). Playwright's own browser download is not
used: the tests launch the system Chromium (``SIGNOFF_CHROMIUM``, default
``/usr/bin/chromium``; install it with ``apt-get install chromium``). When it or
the ``playwright`` package is missing the tests FAIL with that message; they are
never skipped. Screenshots go to ``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import app_config
from tests.fixtures.tenants import PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("SIGNOFF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            f"Chromium not found at {path}: the e2e tests need Debian's chromium "
            "(`apt-get install -y chromium`) or SIGNOFF_CHROMIUM pointing at a Chromium binary",
            pytrace=False,
        )
    return path


PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def signed_in(
    browser: Any,
    base: str,
    username: str,
    next_path: str,
    viewport: dict[str, int] = DESKTOP,
    password: str = PASSWORD,
) -> Any:
    """A new browser context signed in as ``username``, on ``next_path``. Fails (rather
    than going on signed out) when the login does not leave the login page."""
    ctx = browser.new_context(viewport=viewport)
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    page.goto(f"{base}/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url and next_path in url)
    return page


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@dataclass
class LiveServer:
    url: str
    app: Any
    #: The embedded SMTP server's mailbox (``.eml`` files), also shown at ``/dev/mail/``.
    mailbox: Path


@pytest.fixture(scope="session")
def live_server(
    database: Any,
    redis_url: str,
    redis_prefix: str,
    app: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """The app (CSRF on) served on a free loopback port, sending its e-mail to the
    quick start's embedded SMTP server (sign-up and invitations continue by e-mail)."""
    from werkzeug.serving import make_server

    from signoff.app import create_app
    from signoff.devservers import start_embedded_smtp

    smtp = start_embedded_smtp(tmp_path_factory.mktemp("e2e-mail"))
    live = create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}e2e-{uuid.uuid4().hex[:6]}:",
            WTF_CSRF_ENABLED=True,
            TESTING=False,
            SIGNOFF_SIGNUP_RATE_LIMIT="50 per hour",
            # Every simulated person logs in from 127.0.0.1: FAB's per-address login
            # limit (10 per 20 s) would turn later logins away. The limits themselves
            # are tested in tests/integration/security.
            AUTH_RATE_LIMIT="1000 per 20 second",
            SIGNOFF_SMTP_URL=smtp.url,
            SIGNOFF_DEV_MAILBOX=str(smtp.mailbox),
            SIGNOFF_RATELIMIT_ACCOUNT_MAIL_ADDRESS="100 per hour",
        )
    )
    server = make_server("127.0.0.1", 0, live, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    live.config["SIGNOFF_BASE_URL"] = url  # links in e-mail lead back here
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=url, app=live, mailbox=smtp.mailbox)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        smtp.stop()


def mail_link(live: LiveServer, to: str, kind: str, expect: int = 1) -> str:
    """The link containing ``kind`` in the ``expect``-th e-mail the live app sent to ``to``
    (after every queued account e-mail went out)."""
    import email
    import re

    from signoff.provisioning.verification import drain

    drain()
    messages = [
        email.message_from_bytes(p.read_bytes()) for p in sorted(live.mailbox.glob("*.eml"))
    ]
    mine = [m for m in messages if m["To"] == to]
    assert len(mine) >= expect, [m["Subject"] for m in mine]
    for part in mine[expect - 1].walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode()
            match = re.search(rf"https?://\S*?{re.escape(kind)}\S*", text)
            assert match, text
            return match.group(0)
    raise AssertionError("no text part")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the e2e tests need the `playwright` package (pip install playwright; do not run "
            "`playwright install`: the system Chromium is used)",
            pytrace=False,
        )
    executable = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
