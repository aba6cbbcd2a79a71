"""Reads of attachments, always through the request's visibility.

Who may see an attachment is who may see its request
(:func:`signoff.workflow.queries.get_request_for`): a missing id, another tenant's id
(row-level security) and a request the user may not see are the same 404. The auditors
of the request's workflow read (``read_only=True``: details, downloads, previews) but a
write path (deleting) answers them 403.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.attachments.content import store_for
from signoff.attachments.models import Attachment
from signoff.db.ids import parse_id
from signoff.errors import NotFound
from signoff.workflow.queries import get_request_for


def attachments_of(session: Session, request_id: uuid.UUID) -> list[Attachment]:
    """The request's attachments, oldest first (their bytes are not loaded)."""
    return list(
        session.scalars(
            select(Attachment)
            .where(Attachment.request_id == request_id)
            .order_by(Attachment.created_at, Attachment.id)
        )
    )


def get_attachment_for(
    session: Session, *, user_id: int, attachment_id: Any, read_only: bool = False
) -> Attachment:
    """The attachment if ``user_id`` may see its request; else 404 (403 for an auditor
    unless ``read_only``)."""
    found = session.get(Attachment, parse_id(attachment_id))
    if found is None:
        raise NotFound("not_found", "Not found")
    get_request_for(session, user_id=user_id, request_id=found.request_id, read_only=read_only)
    return found


def read_content(session: Session, attachment: Attachment) -> bytes:
    """The attachment's bytes from its store."""
    return store_for(attachment.storage).get(session, attachment)
