"""``/api/v1/notifications``: your in-app notifications and your notification preferences.

Only your own notifications in the token's tenant are listed, counted and marked
read; another member's (or another tenant's) id is 404 like a missing one and
marking it changes nothing (:mod:`signoff.notifications.centre`). Preferences are
yours only: there is no way to name another member's.
"""

from __future__ import annotations

from typing import Any

from flask_appbuilder.api import expose
from werkzeug.wrappers import Response

from signoff.api.base import (
    UUID_PATH,
    TenantBaseApi,
    endpoint,
    json_body,
    link,
    openapi,
    query_args,
)
from signoff.api.common_schemas import ErrorSchema
from signoff.api.notifications_schemas import (
    ChannelPreferencesSchema,
    MarkedReadSchema,
    NotificationListQuerySchema,
    NotificationListSchema,
    NotificationSchema,
    PreferencesSchema,
    PreferencesUpdateSchema,
    UnreadCountSchema,
)
from signoff.api.requests import current_user_id
from signoff.extensions import db
from signoff.notifications import centre, preferences
from signoff.workflow.models import NotificationOutbox

_ID = [("id", UUID_PATH)]


def notification_dict(row: NotificationOutbox, titles: dict[Any, str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "label": preferences.KIND_LABELS.get(row.kind, row.kind.replace("_", " ")),
        "title": row.title,
        "request_id": row.request_id,
        "request_title": titles.get(row.request_id),
        "step_index": row.step_index,
        "payload": dict(row.payload or {}),
        "created_at": row.created_at,
        "read_at": row.read_at,
        "read": row.read_at is not None,
    }


def _dump(row: NotificationOutbox) -> dict[str, Any]:
    titles = centre.request_titles(db.session, [row])
    data: dict[str, Any] = NotificationSchema().dump(notification_dict(row, titles))
    return data


def _preferences(settings: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = PreferencesSchema().dump(
        {**preferences.resolved(settings), "channels": preferences.platform_channels()}
    )
    return data


class NotificationsApi(TenantBaseApi):
    resource_name = "notifications"
    openapi_spec_tag = "Notifications"
    openapi_spec_component_schemas = (
        ErrorSchema,
        NotificationSchema,
        NotificationListSchema,
        UnreadCountSchema,
        MarkedReadSchema,
        ChannelPreferencesSchema,
        PreferencesSchema,
        PreferencesUpdateSchema,
    )

    @expose("/", methods=("GET",))
    @endpoint("read")
    @openapi(
        "List your notifications",
        description="Your in-app notifications in this tenant, newest first.",
        query=NotificationListQuerySchema,
        ok={200: NotificationListSchema},
        errors=(401, 403, 422),
    )
    def get_list(self) -> Response:
        args = query_args(NotificationListQuerySchema())
        uid = current_user_id()
        session = db.session
        page = centre.list_for(
            session,
            uid,
            unread=args.get("unread"),
            page=args["page"],
            page_size=args["page_size"],
        )
        titles = centre.request_titles(session, page.items)
        body = NotificationListSchema().dump(
            {
                "count": page.count,
                "page": page.page,
                "page_size": page.page_size,
                "unread": centre.unread_count(session, uid),
                "result": [notification_dict(r, titles) for r in page.items],
            }
        )
        return self.response(200, **body)

    @expose("/unread-count", methods=("GET",))
    @endpoint("read")
    @openapi(
        "Count your unread notifications",
        ok={200: UnreadCountSchema},
        errors=(401, 403),
    )
    def unread_count(self) -> Response:
        count = centre.unread_count(db.session, current_user_id())
        return self.response(200, **UnreadCountSchema().dump({"unread": count}))

    @expose("/read-all", methods=("POST",))
    @endpoint("write")
    @openapi(
        "Mark all your notifications read",
        ok={200: MarkedReadSchema},
        errors=(401, 403),
    )
    def read_all(self) -> Response:
        session = db.session
        uid = current_user_id()
        marked = centre.mark_all_read(session, uid)
        session.commit()
        body = MarkedReadSchema().dump(
            {"marked": marked, "unread": centre.unread_count(session, uid)}
        )
        return self.response(200, **body)

    @expose("/preferences", methods=("GET",))
    @endpoint("read")
    @openapi(
        "Your notification preferences",
        description=(
            "Per channel, whether each event reaches you (`true`: on), and whether "
            "reminders by e-mail come as one daily digest. `channels` lists the channels "
            "switched on for this platform; in-app notifications are always on."
        ),
        ok={200: PreferencesSchema},
        errors=(401, 403),
    )
    def get_preferences(self) -> Response:
        settings = preferences.load(db.session, current_user_id())
        return self.response(200, **_preferences(settings))

    @expose("/preferences", methods=("PUT",))
    @endpoint("write")
    @openapi(
        "Replace your notification preferences",
        description="The whole set: an event or channel left out is on. Audited.",
        body=PreferencesUpdateSchema,
        body_required=True,
        ok={200: PreferencesSchema},
        errors=(400, 401, 403, 415, 422),
    )
    def put_preferences(self) -> Response:
        data = json_body(PreferencesUpdateSchema(), required=True)
        session = db.session
        uid = current_user_id()
        stored = preferences.save(session, uid, data)
        session.commit()
        return self.response(200, **_preferences(stored))

    @expose("/<id>", methods=("GET",))
    @endpoint("read")
    @openapi("Get one of your notifications", path=_ID, ok={200: NotificationSchema})
    def get(self, id: str) -> Response:
        row = centre.get_notification_for(db.session, current_user_id(), id)
        return self.response(200, **_dump(row))

    @expose("/<id>/read", methods=("POST",))
    @endpoint("write")
    @openapi(
        "Mark one of your notifications read",
        description="Marking it again keeps the first time.",
        path=_ID,
        ok={200: NotificationSchema},
        errors=(401, 403, 404),
        links={200: {"GetNotification": link("NotificationsApi.get", id="$response.body#/id")}},
    )
    def read(self, id: str) -> Response:
        session = db.session
        uid = current_user_id()
        notification_id = centre.mark_read(session, uid, id)
        session.commit()
        row = centre.get_notification_for(session, uid, notification_id)
        return self.response(200, **_dump(row))
