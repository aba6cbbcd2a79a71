"""Security review of the quick start's ``/dev/mail`` (``views/devmail.py``): absent
unless ``SIGNOFF_DEV_MAILBOX`` is set, no path traversal out of the mailbox, and
captured mail (HTML and text) shown inert. These attacks are refused; none of this
was covered elsewhere."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import app_config
from tests.fixtures.tenants import fresh_client

HOSTILE_HTML = (
    '<p>Hi</p><script>parent.document.title="pwned"</script>'
    "<img src=x onerror=\"top.location='https://evil.example'\">"
)
HOSTILE_TEXT = (
    "Approve: http://signoff.test/act/abc\n"
    "javascript:alert(document.cookie)\n"
    'http://evil.example/"><script>alert(1)</script>\n'
    "<b>bold</b>\n"
)


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("devmail")
    box = root / "mail"
    box.mkdir()
    msg = EmailMessage()
    msg["From"], msg["To"] = "signoff@localhost", "manager@acme.example"
    msg["Subject"] = "<script>alert(1)</script> Approval needed"
    msg.set_content(HOSTILE_TEXT)
    msg.add_alternative(HOSTILE_HTML, subtype="html")
    (box / "1-2-3.eml").write_bytes(bytes(msg))
    # Files next to the mailbox that a traversal would reach.
    (root / "4-5-6.eml").write_bytes(b"Subject: outside the mailbox\n\nSECRET-OUTSIDE")
    (root / "secret.txt").write_text("SECRET-OUTSIDE")
    return box


@pytest.fixture(scope="module")
def dev_app(database: Any, redis_url: str, redis_prefix: str, mailbox: Path) -> Any:
    from signoff.app import create_app

    return create_app(
        app_config(database, redis_url, redis_prefix, SIGNOFF_DEV_MAILBOX=str(mailbox))
    )


def test_the_page_does_not_exist_without_a_dev_mailbox(app: Any) -> None:
    assert not app.config.get("SIGNOFF_DEV_MAILBOX")
    client = fresh_client(app)
    for path in ("/dev/mail/", "/dev/mail/1-2-3.eml"):
        assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/dev/mail/..%2F4-5-6.eml",
        "/dev/mail/%2E%2E%2F4-5-6.eml",
        "/dev/mail/..%252F4-5-6.eml",
        "/dev/mail/../4-5-6.eml",
        "/dev/mail/..%5C4-5-6.eml",
        "/dev/mail/%2Fetc%2Fpasswd",
        "/dev/mail/..%2Fsecret.txt",
        "/dev/mail/1-2-3.eml%00.txt",
        "/dev/mail/1-2-3.eml%2F..%2F..%2F4-5-6.eml",
        "/dev/mail/.1-2-3.eml.tmp",
    ],
)
def test_no_path_leaves_the_mailbox(dev_app: Any, path: str) -> None:
    resp = fresh_client(dev_app).get(path)
    assert resp.status_code in (308, 404), resp.status_code
    assert b"SECRET-OUTSIDE" not in resp.data and b"root:" not in resp.data


def test_captured_mail_is_shown_inert(dev_app: Any) -> None:
    client = fresh_client(dev_app)
    listing = client.get("/dev/mail/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in listing and "outside the mailbox" not in listing
    page = client.get("/dev/mail/1-2-3.eml")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # The HTML part only inside a sandboxed srcdoc that may not run scripts.
    assert "<script" not in html and "<img" not in html and "<b>bold" not in html
    [iframe] = [line for line in html.splitlines() if "<iframe" in line]
    sandbox = iframe.split('sandbox="', 1)[1].split('"', 1)[0].split()
    assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
    # Only http(s) URLs become links, escaped.
    assert 'href="javascript:' not in html
    assert '<a href="http://signoff.test/act/abc">' in html
    assert '<a href="http://evil.example/">' in html
