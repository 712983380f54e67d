"""Property-based (issue 9's invariant, over issue 10's new pages and API): whatever query string, method
or body reaches the dashboards, the CSV, the notification pages or their API, from whoever, the answer is
below 500; the APIs answer JSON with a reason for a refusal; nobody but a manager gets a dashboard."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client as HttpClient
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import sign_in
from tests.fuzz import EDGE_INTS, JSON, answered, body_bytes, fuzz, rolled_back

pytestmark = pytest.mark.django_db

PAGES = ["/oversight/", "/oversight/workspaces/", "/oversight/workspaces/{x}/", "/oversight/export.csv",
         "/notifications", "/notifications/settings", "/notifications/read"]
APIS = ["/api/v1/notifications", "/api/v1/notifications/read"]
NAMES = st.one_of(st.sampled_from(["agency", "lead", "date_from", "date_to", "workspace_status", "action_status",
                                   "page", "routine_email", "ids"]), st.text(max_size=6))
VALUES = st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=30), EDGE_INTS.map(str),
                   st.sampled_from(["%00", "%ff", "%ED%A0%80", "9" * 5000, "2026-02-30", "0000-01-01", "9999-12-31",
                                    "-1", "1e3", "daily", "immediate", "overdue", "closed", "{}", "[1,2]"]))
QUERIES = st.lists(st.tuples(NAMES, VALUES), max_size=4).map(
    lambda pairs: "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='%')}" for k, v in pairs) if pairs else "")
CALLERS = ["manager", "partnership", "practitioner", "anonymous"]


@pytest.fixture
def sessions(lead, manager, make_persona, custodian):
    partnership = make_persona("pat@partnership.example", "school", full_name="Pat Partnership", role="partnership")
    return {"manager": sign_in(HttpClient(), manager), "partnership": sign_in(HttpClient(), partnership),
            "practitioner": sign_in(HttpClient(), lead), "anonymous": HttpClient()}


@fuzz(max_examples=120)
@given(data=st.data())
def test_every_page_answers_any_query_without_a_500(sessions, data):
    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    method = data.draw(st.sampled_from(["GET", "GET", "GET", "POST", "HEAD", "PUT"]), label="method")
    segment = data.draw(st.one_of(st.text(max_size=20).map(lambda t: quote(t, safe="")),
                                  st.sampled_from(["TAC-2026-0001", "%00", "..", "x" * 300])), label="segment")
    path = data.draw(st.sampled_from(PAGES), label="path").format(x=segment) + data.draw(QUERIES, label="query")
    with rolled_back():
        response = sessions[caller].generic(method, path, "")
    assert response.status_code < 500, (path, response.content[:300])
    if path.startswith("/oversight/") and response.status_code == 200:
        assert caller in ("manager", "partnership"), path


@fuzz(max_examples=80)
@given(data=st.data())
def test_the_notification_api_answers_any_body_without_a_500(sessions, data):
    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    method = data.draw(st.sampled_from(["GET", "POST", "POST", "DELETE"]), label="method")
    path = data.draw(st.sampled_from(APIS), label="path") + data.draw(QUERIES, label="query")
    body = data.draw(st.one_of(st.just(b'{"all": true}'), st.just(b'{"ids": [1, 2]}'), JSON.map(body_bytes)),
                     label="body")
    with rolled_back():
        answered(sessions[caller].generic(method, path, body, content_type="application/json"))


@pytest.mark.parametrize("agency", ["9" * 5000, "9" * 19, "١٢", "0"])
def test_an_agency_no_id_could_be_is_refused_with_a_reason(sessions, agency):
    """Hypothesis found 5,000 nines in `agency` answered with a 500 (int() refuses over 4,300 digits)."""
    response = sessions["partnership"].get("/oversight/", {"agency": agency})
    assert response.status_code == 200
    assert "Choose an agency from the list" in response.content.decode()


@pytest.mark.parametrize("page", ["/oversight/", "/oversight/workspaces/", "/oversight/export.csv"])
def test_the_last_day_a_date_can_name_is_an_end_that_bounds_nothing(sessions, page):
    """Hypothesis found date_to=9999-12-31 answered with a 500 (the day after it overflowed)."""
    response = sessions["manager"].get(page, {"date_to": "9999-12-31"})
    assert response.status_code == 200
