"""Attachments in the portal: upload on the request page (alone or with a comment),
download, the inline preview of images (with a Pillow thumbnail on the page) and of
PDFs (in a same-origin frame on the request page).

Who may see an attachment is who may see its request (``get_request_for``); anything
else, another tenant's id included, is 404. The auditors of the request's workflow
download and preview; uploading and deleting answer them 403. Downloads are
``Content-Disposition: attachment`` with the type detected at upload and
``X-Content-Type-Options: nosniff`` and a ``sandbox`` policy; a preview is served
inline only for raster images (PNG, JPEG, GIF, WebP) and PDFs, never SVG or HTML, with
a policy that lets nothing load or run and only this origin frame it. Files chosen on
the new-request form are checked before the request is submitted and stored right after it
(:func:`attach_uploads`); on the resubmit form, before the resubmission. The uploader
deletes a file of an open request after a confirmation (``do_detach``).
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
from signoff.attachments.content import FRAME_TYPES, PREVIEW_TYPES, thumbnail
from signoff.attachments.queries import attachments_of, get_attachment_for, read_content
from signoff.errors import ActionError
from signoff.extensions import db
from signoff.languages import translated
from signoff.security.actor import request_actor
from signoff.security.headers import DOWNLOAD_POLICY, INLINE_FILE_POLICY, file_headers
from signoff.views.common import SignoffView, tenant_nav, user_names
from signoff.views.tenant_base import TenantScoped
from signoff.workflow.actions import check_upload, do_attach, do_comment, do_detach
from signoff.workflow.engine import ACTIVE_REQUEST_STATUSES
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
            problems.append(f"{name or _('file')}: {translated(exc.message)}")
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
            problems.append(f"{name or _('file')}: {translated(exc.message)}")
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

    @expose("/attachments/<attachment_id>/delete", methods=["GET", "POST"])
    def delete(self, attachment_id: str) -> Response | str:
        """Ask first (GET, or a POST without ``confirm=yes``), then delete."""
        uid = int(g.user.id)
        row = get_attachment_for(db.session, user_id=uid, attachment_id=attachment_id)
        here = url_for("PortalView.show", request_id=str(row.request_id)) + "#attachments"
        if request.method == "GET" or request.form.get("confirm") != "yes":
            return self.render(
                "signoff/portal_confirm.html",
                nav=tenant_nav(db.session),
                heading=_("Delete “%(name)s”?", name=row.filename),
                body=_(
                    "The file is removed from the request for everyone; the audit trail "
                    "keeps its name and checksum."
                ),
                action=url_for("AttachmentsView.delete", attachment_id=str(row.id)),
                confirm_label=_("Yes, delete it"),
                cancel=here,
                danger=True,
            )
        try:
            done = do_detach(db.session, actor=request_actor(), attachment_id=row.id)
            flash(_("Deleted %(name)s.", name=done.extra["filename"]), "success")
        except ActionError as exc:
            if exc.status == 404:
                abort(404)
            flash(exc.message, "danger")
        return redirect(here)

    @expose("/attachments/<attachment_id>/download")
    @file_headers(DOWNLOAD_POLICY)
    def download(self, attachment_id: str) -> Response:
        row = get_attachment_for(
            db.session, user_id=int(g.user.id), attachment_id=attachment_id, read_only=True
        )
        return download_response(read_content(db.session, row), row)

    @expose("/attachments/<attachment_id>/preview")
    @file_headers(INLINE_FILE_POLICY, frame_options="SAMEORIGIN")
    def preview(self, attachment_id: str) -> Response:
        row = get_attachment_for(
            db.session, user_id=int(g.user.id), attachment_id=attachment_id, read_only=True
        )
        if row.content_type not in PREVIEW_TYPES | FRAME_TYPES:
            abort(404)
        resp = download_response(read_content(db.session, row), row, inline=True)
        resp.headers["Content-Security-Policy"] = INLINE_FILE_POLICY
        return resp

    @expose("/attachments/<attachment_id>/thumbnail")
    @file_headers(INLINE_FILE_POLICY)
    def thumbnail(self, attachment_id: str) -> Response:
        """A small PNG of an image attachment (made with Pillow; 404 when there is none)."""
        row = get_attachment_for(
            db.session, user_id=int(g.user.id), attachment_id=attachment_id, read_only=True
        )
        small = thumbnail(read_content(db.session, row), row.content_type)
        if small is None:
            abort(404)
        resp = Response(small, mimetype="image/png")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Cache-Control"] = "private, max-age=3600"
        return resp


def attachments_for(req: Any) -> list[dict[str, Any]]:
    """The request page's attachments (the template global ``attachments_for``, so the
    request page needs nothing but ``{% include "signoff/_attachments.html" %}``)."""
    rows = attachments_of(db.session, req.id)
    names = user_names(db.session, [r.uploaded_by for r in rows])
    me = int(g.user.id) if g.get("user") is not None else None
    is_open = req.status in ACTIVE_REQUEST_STATUSES
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
            "frame": r.content_type in FRAME_TYPES,
            "deletable": is_open and r.uploaded_by == me,
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
