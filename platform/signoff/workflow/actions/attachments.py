"""``do_attach``: a file on a request or on one of its comments (receipts, quotes);
``do_detach``: its uploader takes it off again while the request is open.

Under the request's lock (so the count and storage limits cannot be passed by two
uploads at once), for someone who may see the request (404 otherwise, as for another
tenant), after the content checks and the virus scanner of
:mod:`signoff.attachments.content`; the upload is audited in the tenant's chain.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session, scoped_session

from signoff.attachments.content import (
    Limits,
    check_content,
    check_quota,
    digest,
    limits_from_config,
    load_scanner,
    safe_filename,
    scan,
    store_for,
)
from signoff.attachments.models import Attachment
from signoff.billing import quotas
from signoff.errors import Conflict, Refused
from signoff.roles import ADMIN_ROLE
from signoff.workflow.actions.core import (
    ActionResult,
    Actor,
    _audit,
    _lock_and_load,
    _not_found,
    _transaction,
)
from signoff.workflow.approvers import Directory
from signoff.workflow.engine import ACTIVE_REQUEST_STATUSES
from signoff.workflow.models import ApprovalRequest, RequestComment
from signoff.workflow.queries import refusal_for, visible_to


def check_upload(data: bytes, limits: Limits | None = None) -> str:
    """The checks that need no database (size, type, scanner): the sniffed type.

    A page runs them before it submits a new request with its files, so a refused file
    never leaves a request submitted without it."""
    limits = limits or limits_from_config(current_app.config)
    kind = check_content(data, limits)
    scan(data, load_scanner(current_app.config.get("SIGNOFF_ATTACHMENT_SCANNER")))
    return kind


def do_attach(
    session: Session | scoped_session[Session],
    *,
    actor: Actor,
    request_id: uuid.UUID | str,
    filename: str | None,
    data: bytes,
    comment_id: uuid.UUID | str | None = None,
    limits: Limits | None = None,
) -> ActionResult:
    """Store one file on the request (and its comment); ``extra`` holds its id."""
    limits = limits or limits_from_config(current_app.config)
    kind = check_upload(data, limits)
    store = store_for(str(current_app.config.get("SIGNOFF_ATTACHMENT_STORE") or "database"))
    with _transaction(session) as tx:
        locked = _lock_and_load(tx, request_id)
        req = tx.session.get(ApprovalRequest, locked.id)
        if req is None:
            raise _not_found()
        directory = Directory.load(tx.session)
        is_admin = ADMIN_ROLE in directory.roles(actor.user_id)
        if not visible_to(tx.session, req, actor.user_id, is_admin=is_admin):
            raise refusal_for(tx.session, req, actor.user_id)  # 403 for an auditor
        comment: Any = None
        if comment_id is not None:
            try:
                comment = tx.session.get(RequestComment, uuid.UUID(str(comment_id)))
            except ValueError:
                comment = None
            if comment is None or comment.request_id != req.id:
                raise _not_found()
        check_quota(tx.session, request_id=req.id, size=len(data), limits=limits)
        quotas.check_attachment_storage(tx.session, len(data))
        row = Attachment(
            request_id=req.id,
            comment_id=comment.id if comment is not None else None,
            uploaded_by=actor.user_id,
            filename=safe_filename(filename, kind),
            content_type=kind,
            size_bytes=len(data),
            sha256=digest(data),
        )
        store.put(tx.session, row, data)
        tx.session.add(row)
        tx.session.flush()
        _audit(
            tx,
            locked,
            "request.attachment_added",
            actor,
            payload={
                "attachment_id": str(row.id),
                "filename": row.filename,
                "content_type": kind,
                "size_bytes": row.size_bytes,
                "sha256": row.sha256,
                "comment_id": str(row.comment_id) if row.comment_id else None,
            },
        )
        result = ActionResult(
            request_id=req.id,
            status=locked.status,
            events=["attachment_added"],
            extra={"attachment_id": str(row.id)},
        )
    return result


def do_detach(
    session: Session | scoped_session[Session],
    *,
    actor: Actor,
    attachment_id: uuid.UUID | str,
) -> ActionResult:
    """Delete one attachment: only its uploader, only while its request is open
    (waiting for approval or sent back for changes). Under the request's lock; the
    bytes go with the row, so the organisation's storage (the sum of ``size_bytes``)
    is released at commit. Audited as ``request.attachment_deleted``. Another tenant's
    id, or a request the actor may not see, is 404."""
    try:
        wanted = uuid.UUID(str(attachment_id))
    except ValueError:
        raise _not_found() from None
    found = session.get(Attachment, wanted)
    if found is None:
        raise _not_found()
    request_id = found.request_id
    with _transaction(session) as tx:
        locked = _lock_and_load(tx, request_id)
        req = tx.session.get(ApprovalRequest, locked.id)
        row = tx.session.get(Attachment, wanted, populate_existing=True)
        if req is None or row is None or row.request_id != req.id:
            raise _not_found()
        directory = Directory.load(tx.session)
        is_admin = ADMIN_ROLE in directory.roles(actor.user_id)
        if not visible_to(tx.session, req, actor.user_id, is_admin=is_admin):
            raise refusal_for(tx.session, req, actor.user_id)  # 403 for an auditor
        if row.uploaded_by != actor.user_id:
            raise Refused(
                "not_uploader", "Only the person who attached a file may delete it", field="id"
            )
        if locked.status not in ACTIVE_REQUEST_STATUSES:
            raise Conflict(
                "request_closed",
                "The request is decided or withdrawn: its attachments are kept as they are",
            )
        payload = {
            "attachment_id": str(row.id),
            "filename": row.filename,
            "content_type": row.content_type,
            "size_bytes": row.size_bytes,
            "sha256": row.sha256,
        }
        tx.session.delete(row)
        tx.session.flush()
        _audit(tx, locked, "request.attachment_deleted", actor, payload=payload)
        result = ActionResult(
            request_id=req.id,
            status=locked.status,
            events=["attachment_deleted"],
            extra={"attachment_id": str(wanted), "filename": payload["filename"]},
        )
    return result
