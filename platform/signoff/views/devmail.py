"""The quick start's captured e-mail: ``/dev/mail`` lists what the embedded SMTP server
received, so a newcomer sees the notifications and can click Approve.

Registered only when ``SIGNOFF_DEV_MAILBOX`` is set, which ``signoff demo`` does for
its embedded SMTP server and nothing else does: in production the page does not
exist. Message bodies are shown escaped; links are made clickable.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from flask import abort, current_app
from flask_appbuilder import AppBuilder, expose
from markupsafe import Markup, escape

from signoff.views.common import SignoffView

NAME = re.compile(r"^[0-9]+-[0-9]+-[0-9]+\.eml$")
URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass
class Captured:
    name: str
    to: str
    subject: str
    date: str
    text: str
    html: str | None


def _part(message: Message, subtype: str) -> str | None:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return None


def _read(path: Path) -> Captured:
    message = email.message_from_bytes(path.read_bytes())
    try:
        date = (
            parsedate_to_datetime(message["Date"]).strftime("%Y-%m-%d %H:%M")
            if message["Date"]
            else ""
        )
    except (TypeError, ValueError):
        date = ""
    return Captured(
        name=path.name,
        to=str(message["To"] or ""),
        subject=str(message["Subject"] or ""),
        date=date,
        text=(_part(message, "plain") or "").replace("\r\n", "\n"),
        html=_part(message, "html"),
    )


def linkify(text: str) -> Markup:
    """Escaped text whose URLs are links."""
    out = []
    last = 0
    for match in URL.finditer(text):
        out.append(escape(text[last : match.start()]))
        url = match.group(0)
        out.append(Markup('<a href="{0}">{0}</a>').format(url))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


class DevMailView(SignoffView):
    route_base = "/dev/mail"
    default_view = "inbox"

    def _mailbox(self) -> Path:
        folder = current_app.config.get("SIGNOFF_DEV_MAILBOX")
        if not folder:
            abort(404)
        return Path(str(folder))

    @expose("/")
    def inbox(self) -> str:
        files = sorted(
            (p for p in self._mailbox().glob("*.eml") if NAME.match(p.name)), reverse=True
        )
        return self.render("signoff/dev_mail.html", messages=[_read(p) for p in files[:200]])

    @expose("/<name>")
    def show(self, name: str) -> str:
        path = self._mailbox() / name
        if not NAME.match(name) or not path.is_file():
            abort(404)
        message = _read(path)
        return self.render(
            "signoff/dev_mail_message.html", message=message, text=linkify(message.text)
        )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(DevMailView())
