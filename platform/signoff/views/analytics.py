"""Tenant admin: the analytics dashboard under ``/t/<tenant_slug>/admin/analytics/``
(issue 15 item 2).

The figures are :func:`signoff.workflow.analytics.analytics`, the same as
``/api/v1/metrics/``; the charts are SVG drawn here, on the server, with every number
written as text in the chart and in a table beside it, so the page needs no
JavaScript and a screen reader reads the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from sqlalchemy import select
from werkzeug.wrappers import Response

from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.views.common import SignoffView, tenant_nav, user_names
from signoff.views.tenant_base import TenantScoped
from signoff.workflow.analytics import analytics, parse_period
from signoff.workflow.models import Workflow

CHART_WIDTH = 480
LABEL_WIDTH = 180
ROW_HEIGHT = 26


def duration(seconds: float | None) -> str:
    """``seconds`` for people: "45 s", "12.5 min", "3.2 h", "1.5 d"; "—" when unknown."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


@dataclass(frozen=True)
class Bar:
    label: str
    y: int
    width: float
    text: str
    alt: bool = False


def hbars(items: list[tuple[str, float | None, str]], *, pairs: bool = False) -> dict[str, Any]:
    """A horizontal bar chart: one bar per item (label, value, text), scaled to the
    largest value; with ``pairs``, items come two by two (drawn in two colours)."""
    values = [v for _, v, _ in items if v is not None]
    top = max(values) if values else 0.0
    span = CHART_WIDTH - LABEL_WIDTH - 140
    bars = []
    y = 4
    for i, (label, value, text) in enumerate(items):
        width = (value / top * span) if (top and value) else 0.0
        bars.append(
            Bar(label, y, round(max(width, 1.0 if value else 0.0), 1), text, pairs and i % 2 == 1)
        )
        y += ROW_HEIGHT if not pairs or i % 2 == 1 else ROW_HEIGHT - 8
    return {"bars": bars, "height": y + 4, "label_width": LABEL_WIDTH, "width": CHART_WIDTH}


def vbars(weeks: list[dict[str, Any]]) -> dict[str, Any]:
    """Weekly throughput: submitted and completed side by side per week."""
    height = 180
    base = height - 30
    top = max([max(w["submitted"], w["completed"]) for w in weeks] + [1])
    slot = min(60.0, max(16.0, (CHART_WIDTH - 40) / max(len(weeks), 1)))
    width = max(CHART_WIDTH, int(40 + slot * len(weeks)))
    bar = (slot - 6) / 2
    columns = []
    for i, w in enumerate(weeks):
        x = 30 + i * slot
        hs = (w["submitted"] / top) * (base - 20)
        hc = (w["completed"] / top) * (base - 20)
        columns.append(
            {
                "x": round(x, 1),
                "bar": round(bar, 1),
                "submitted": w["submitted"],
                "completed": w["completed"],
                "hs": round(hs, 1),
                "hc": round(hc, 1),
                "week": w["week"],
                "label": i % max(1, len(weeks) // 8) == 0,
            }
        )
    return {"columns": columns, "height": height, "base": base, "width": width}


class AnalyticsView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/admin/analytics"
    default_view = "index"
    tenant_roles = (ADMIN_ROLE,)

    @expose("/")
    @no_cache
    def index(self) -> str | Response:
        session = db.session
        period, errors = parse_period(request.args.get("since"), request.args.get("until"))
        data = analytics(session, period) if period is not None else None
        context: dict[str, Any] = {}
        if data is not None:
            names = dict(session.execute(select(Workflow.key, Workflow.name)).all())
            people = user_names(session, [a["user_id"] for a in data["slowest_approvers"]])
            wf_items: list[tuple[str, float | None, str]] = []
            for w in data["workflows"]:
                label = names.get(w["workflow"], w["workflow"])
                t = w["approval_time"]
                wf_items.append((f"{label} median", t["median"], duration(t["median"])))
                wf_items.append((f"{label} p90", t["p90"], duration(t["p90"])))
            context = {
                "names": names,
                "people": people,
                "times_chart": hbars(wf_items, pairs=True),
                "steps_chart": hbars(
                    [
                        (
                            f"{names.get(s['workflow'], s['workflow'])}: {s['name']}",
                            s["approval_time"]["median"],
                            duration(s["approval_time"]["median"]),
                        )
                        for s in data["slowest_steps"]
                    ]
                ),
                "approvers_chart": hbars(
                    [
                        (
                            people.get(a["user_id"], str(a["user_id"])),
                            a["median"],
                            f"{duration(a['median'])} ({a['decisions']} decisions)",
                        )
                        for a in data["slowest_approvers"]
                    ]
                ),
                "throughput_chart": vbars(data["throughput"]),
            }
        page = self.render(
            "signoff/admin_analytics.html",
            nav=tenant_nav(session),
            data=data,
            errors=errors,
            args=request.args,
            duration=duration,
            percent=percent,
            **context,
        )
        return page if not errors else Response(page, status=400, mimetype="text/html")


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(AnalyticsView())
