"""Attachments in the portal: upload on the request page (alone or with a comment),
download, and the inline preview of images.

Who may see an attachment is who may see its request (``get_request_for``); anything
else, another tenant's id included, is 404. Downloads are
``Content-Disposition: attachment`` with the type detected at upload and
``X-Content-Type-Options: nosniff``; a preview is served inline only for raster images
(PNG, JPEG, GIF, WebP), never SVG or HTML. Files chosen on the new-request form are
checked before the request is submitted and stored right after it
(:func:`attach_uploads`).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask, abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from signoff.api.attachments import download_response
from signoff.api.input_guard import upload_body
from signoff.attachments.content import PREVIEW_TYPES
from signoff.attachments.queries import attachments_of, get_attachment_for, read_content
from signoff.errors import ActionError
from signoff.extensions import db
from signoff.languages import translated
from signoff.security.actor import request_actor
from signoff.views.common import SignoffView, user_names
from signoff.views.tenant_base import TenantScoped
from signoff.workflow.actions import check_upload, do_attach, do_comment
from signoff.workflow.queries import get_request_for


def chosen_files(field: str = "files") -> list[FileStorage]:
    """The files of a multipart form field, without the empty part a browser sends
    when nothing was chosen."""
    return [f for f in request.files.getlist(field) if f and f.filename]


def check_uploads(files: list[tuple[str | None, bytes]]) -> list[str]:
    """Problems of files about to be attached (size, type, scanner), one line each."""
    problems = []
    for name, data in files:
        try:
            check_upload(data)
        except ActionError as exc:
            problems.append(f"{name or 'file'}: {translated(exc.message)}")
    return problems


def attach_uploads(
    request_id: uuid.UUID, files: list[tuple[str | None, bytes]], comment_id: Any = None
) -> list[str]:
    """Attach ``files`` to the request; the problems of those refused, one line each."""
    problems = []
    for name, data in files:
        try:
            do_attach(
                db.session,
                actor=request_actor(),
                request_id=request_id,
                filename=name,
                data=data,
                comment_id=comment_id,
            )
        except ActionError as exc:
            problems.append(f"{name or 'file'}: {translated(exc.message)}")
    return problems


class AttachmentsView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>"

    @expose("/requests/<request_id>/attachments", methods=["POST"])
    @upload_body
    def upload(self, request_id: str) -> Response:
        req = get_request_for(db.session, user_id=int(g.user.id), request_id=request_id)
        here = url_for("PortalView.show", request_id=str(req.id))
        files = [(f.filename, f.read()) for f in chosen_files()]
        body = (request.form.get("body") or "").strip()
        if not files and not body:
            flash(_("Choose a file to attach."), "danger")
            return redirect(here + "#attachments")
        problems = check_uploads(files)
        if problems:
            flash(_("Nothing was attached.") + " " + " ".join(problems), "danger")
            return redirect(here + "#attachments")
        comment_id = None
        if body:
            try:
                done = do_comment(db.session, actor=request_actor(), request_id=req.id, body=body)
            except ActionError as exc:
                flash(translated(exc.message), "danger")
                return redirect(here + "#attachments")
            comment_id = done.extra.get("comment_id")
        problems = attach_uploads(req.id, files, comment_id)
        if problems:
            flash(_("Not attached:") + " " + " ".join(problems), "danger")
        elif files:
            flash(
                ngettext("Attached %(num)s file.", "Attached %(num)s files.", len(files)), "success"
            )
        else:
            flash(_("Comment added."), "success")
        return redirect(here + "#attachments")

    @expose("/attachments/<attachment_id>/download")
    def download(self, attachment_id: str) -> Response:
        row = get_attachment_for(db.session, user_id=int(g.user.id), attachment_id=attachment_id)
        return download_response(read_content(db.session, row), row)

    @expose("/attachments/<attachment_id>/preview")
    def preview(self, attachment_id: str) -> Response:
        row = get_attachment_for(db.session, user_id=int(g.user.id), attachment_id=attachment_id)
        if row.content_type not in PREVIEW_TYPES:
            abort(404)
        return download_response(read_content(db.session, row), row, inline=True)


def attachments_for(req: Any) -> list[dict[str, Any]]:
    """The request page's attachments (the template global ``attachments_for``, so the
    request page needs nothing but ``{% include "signoff/_attachments.html" %}``)."""
    rows = attachments_of(db.session, req.id)
    names = user_names(db.session, [r.uploaded_by for r in rows])
    return [
        {
            "id": str(r.id),
            "filename": r.filename,
            "content_type": r.content_type,
            "size": human_size(r.size_bytes),
            "by": names.get(r.uploaded_by, f"user {r.uploaded_by}"),
            "at": r.created_at,
            "on_comment": r.comment_id is not None,
            "preview": r.content_type in PREVIEW_TYPES,
        }
        for r in rows
    ]


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(AttachmentsView())
    app.jinja_env.globals["attachments_for"] = attachments_for
