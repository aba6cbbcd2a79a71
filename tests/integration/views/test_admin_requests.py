"""Issue 15 item 1: every request of the organisation for its admins: filters,
full-text search over titles and input fields, sorting, keyset pages, CSV export,
and isolation (another tenant's admin never finds, exports or opens these rows)."""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest

from tests.integration.views.admin_data import seed_analytics
from tests.integration.views.conftest import text_of


@pytest.fixture(scope="module")
def seeded(app, database, tenant_factory):
    tenant = tenant_factory()
    marker = f"zq{uuid.uuid4().hex[:8]}"
    ids = seed_analytics(app, database, tenant, marker=marker)
    return tenant, ids, marker


def _titles(html: str) -> list[str]:
    table = html.split('data-testid="requests"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'/requests/[0-9a-f-]+">([^<]+)</a>', table)


def _titles_or_none(html: str) -> list[str]:
    return _titles(html) if 'data-testid="requests"' in html else []


def _get(client, tenant, query: str = ""):
    return client.get(f"/t/{tenant.slug}/admin/requests/?{query}")


def test_filters_each_narrow_the_list(seeded, login):
    tenant, _, _ = seeded
    admin = login(tenant.username("admin"))
    every = _titles(text_of(_get(admin, tenant)))
    assert sorted(every) == [f"R{i} expense" for i in range(1, 8)]
    assert sorted(_titles(text_of(_get(admin, tenant, "status=approved")))) == [
        "R1 expense",
        "R2 expense",
        "R3 expense",
        "R5 expense",
    ]
    manager2 = tenant.user("manager2")
    # Who decided (R2, R7) or may decide now (R6 waits for either manager).
    assert sorted(_titles(text_of(_get(admin, tenant, f"approver={manager2}")))) == [
        "R2 expense",
        "R6 expense",
        "R7 expense",
    ]
    bob = tenant.user("bob")
    assert "no-requests" in text_of(_get(admin, tenant, f"requester={bob}"))
    alice = tenant.user("alice")
    assert len(_titles(text_of(_get(admin, tenant, f"requester={alice}")))) == 7
    assert len(_titles(text_of(_get(admin, tenant, "workflow=expense_approval")))) == 7
    assert "no-requests" in text_of(_get(admin, tenant, "since=2026-06-11"))
    assert len(_titles(text_of(_get(admin, tenant, "since=2026-06-10&until=2026-06-10")))) == 7


@pytest.mark.parametrize("sparse", [1000, 0], ids=["by-id", "per-request"])
def test_the_approver_filter_by_id_or_per_request(
    seeded, login, tenant_factory, monkeypatch, sparse
):
    """Both ways of the approver filter (ids from ``signoff.requests_open_to`` and the
    decisions, or the per-request test past ``SPARSE``): the same rows, on the page and
    in the CSV; another tenant's admin asking for the same person finds nothing."""
    from signoff.workflow import search

    monkeypatch.setattr(search, "SPARSE", sparse)
    tenant, _, _ = seeded
    admin = login(tenant.username("admin"))
    manager2 = tenant.user("manager2")
    expected = ["R2 expense", "R6 expense", "R7 expense"]
    html = text_of(_get(admin, tenant, f"approver={manager2}&sort=title&page_size=2"))
    assert _titles(html) == expected[:2]
    assert re.search(r"<strong>3</strong>\s*requests match", html)
    export = admin.get(f"/t/{tenant.slug}/admin/requests/export.csv?approver={manager2}")
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert sorted(r["title"] for r in rows) == expected
    other = tenant_factory()
    intruder = login(other.username("admin"))
    assert "no-requests" in text_of(_get(intruder, other, f"approver={manager2}"))
    export = intruder.get(f"/t/{other.slug}/admin/requests/export.csv?approver={manager2}")
    assert len(export.get_data(as_text=True).strip().splitlines()) == 1  # the header only


def test_overdue_finds_active_steps_past_their_due_time(seeded, login, database):
    tenant, ids, _ = seeded
    admin = login(tenant.username("admin"))
    assert "no-requests" in text_of(_get(admin, tenant, "overdue=1"))
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE approval_step SET due_at = now() - interval '1 hour' "
            "WHERE tenant_id = %s AND request_id = %s AND status = 'active'",
            (tenant.id, ids["R6"]),
        )
    html = text_of(_get(admin, tenant, "overdue=1"))
    assert _titles(html) == ["R6 expense"] and "overdue" in html


def test_full_text_search_covers_titles_and_input_fields(seeded, login):
    tenant, _, marker = seeded
    admin = login(tenant.username("admin"))
    assert _titles(text_of(_get(admin, tenant, f"q={marker}"))) == ["R1 expense"]
    assert _titles(text_of(_get(admin, tenant, "q=Gadgets"))) == ["R4 expense"]
    assert _titles(text_of(_get(admin, tenant, "q=R3"))) == ["R3 expense"]  # a title word
    assert _titles(text_of(_get(admin, tenant, "q=42"))) == ["R1 expense"]  # a field value
    # websearch syntax: a phrase, and a word left out.
    assert _titles(text_of(_get(admin, tenant, "q=%22paper+co%22"))) == ["R3 expense"]
    assert "R4 expense" not in _titles(text_of(_get(admin, tenant, "q=expense+-gadgets")))
    assert "no-requests" in text_of(_get(admin, tenant, "q=nothingmatchesthis"))


def test_search_by_stored_words_when_many_requests_match(
    seeded, tenant_factory, login, monkeypatch
):
    """A search matching more than ``search.SPARSE`` requests tests each row's stored
    words instead of reading ids; here every search takes that path."""
    from signoff.workflow import search

    monkeypatch.setattr(search, "SPARSE", 0)
    tenant, _, marker = seeded
    admin = login(tenant.username("admin"))
    assert _titles(text_of(_get(admin, tenant, f"q={marker}"))) == ["R1 expense"]
    assert _titles(text_of(_get(admin, tenant, "q=%22paper+co%22"))) == ["R3 expense"]
    assert "R4 expense" not in _titles(text_of(_get(admin, tenant, "q=expense+-gadgets")))
    other = tenant_factory()
    intruder = login(other.username("admin"))
    assert "no-requests" in text_of(_get(intruder, other, f"q={marker}"))
    export = intruder.get(f"/t/{other.slug}/admin/requests/export.csv?q={marker}")
    assert marker not in export.get_data(as_text=True)


def test_sorting_and_keyset_pages(seeded, login):
    tenant, _, _ = seeded
    admin = login(tenant.username("admin"))
    assert _titles(text_of(_get(admin, tenant, "sort=title"))) == [
        f"R{i} expense" for i in range(1, 8)
    ]
    seen: list[str] = []
    query = "sort=-title&page_size=3"
    for _ in range(5):
        html = text_of(_get(admin, tenant, query))
        seen += _titles(html)
        after = re.search(r'after=([^&"]+)[^"]*" data-testid="next-page"', html)
        if not after:
            break
        query = f"sort=-title&page_size=3&after={after.group(1)}"
    assert seen == [f"R{i} expense" for i in range(7, 0, -1)]


def test_bad_arguments_answer_400_naming_the_field(seeded, login):
    tenant, _, _ = seeded
    admin = login(tenant.username("admin"))
    for query, field in (
        ("status=lost", "status"),
        ("since=tomorrow", "since"),
        ("sort=price", "sort"),
        ("requester=bob", "requester"),
        ("after=garbage", "after"),
        ("page_size=0", "page_size"),
    ):
        resp = _get(admin, tenant, query)
        assert resp.status_code == 400, query
        assert f"<strong>{field}</strong>" in text_of(resp)
    assert admin.get(f"/t/{tenant.slug}/admin/requests/export.csv?status=lost").status_code == 400


def test_csv_export_has_the_filtered_rows_and_neutralises_formulas(app, database, seeded, login):
    tenant, _, marker = seeded
    admin = login(tenant.username("admin"))
    resp = admin.get(f"/t/{tenant.slug}/admin/requests/export.csv?status=approved&sort=title")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [r["title"] for r in rows] == ["R1 expense", "R2 expense", "R3 expense", "R5 expense"]
    assert marker in rows[0]["input_data"]
    from tests.integration.views.conftest import submit

    submit(app, tenant, "expense_approval", {"amount": 500}, title="=HYPERLINK(1)")
    found = admin.get(f"/t/{tenant.slug}/admin/requests/export.csv?q=hyperlink")
    (row,) = list(csv.DictReader(io.StringIO(found.get_data(as_text=True))))
    assert row["title"] == "'=HYPERLINK(1)"


def test_another_tenant_never_finds_exports_or_opens_these_requests(seeded, tenant_factory, login):
    tenant, _ids, marker = seeded
    other = tenant_factory()
    intruder = login(other.username("admin"))
    html = text_of(_get(intruder, other, f"q={marker}"))
    assert "no-requests" in html and _titles_or_none(html) == []
    assert "no-requests" in text_of(_get(intruder, other))
    export = intruder.get(f"/t/{other.slug}/admin/requests/export.csv?q={marker}")
    assert export.status_code == 200 and marker not in export.get_data(as_text=True)
    assert len(export.get_data(as_text=True).strip().splitlines()) == 1  # the header only
    # This tenant's pages are a 404 for the other tenant's admin.
    assert intruder.get(f"/t/{tenant.slug}/admin/requests/").status_code == 404
    assert intruder.get(f"/t/{tenant.slug}/admin/requests/export.csv").status_code == 404


def test_only_admins_see_all_requests(seeded, login):
    tenant, _, _ = seeded
    alice = login(tenant.username("alice"))
    assert alice.get(f"/t/{tenant.slug}/admin/requests/").status_code in (403, 404)
