"""The notification pages (/notifications, /notifications/settings), their JSON API (/api/v1/notifications)
and the navigation's unread badge, through Django's test client with sessions made by the real sign-in
views. Personas: Sam Lead, Dr Priya GP, Morgan Manager (Sam's agency, in no workspace) and Olly Outsider
(a school, with a workspace of their own): each sees their own notifications and nothing of anyone else's."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client as HttpClient
from django.utils import timezone

from audit.models import AuditEvent
from notifications import services
from notifications.models import Notification, NotificationSettings
from notifications.selectors import PAGE_SIZE
from oversight.services import clocks_run
from tests.conftest import sign_in
from tests.messaging.factories import Client
from tests.messaging.test_api import get, ok, refused, send

pytestmark = pytest.mark.django_db

Kind = Notification.Kind
ASSIGNED = Kind.ACTION_ASSIGNED.label
BREACHED = Kind.CONCERN_BREACHED.label
DUE = Kind.ACTION_DUE.label


@pytest.fixture
def http():
    def make(persona, *, verify: bool = True) -> HttpClient:
        return sign_in(HttpClient(), persona, verify=verify)

    return make


@pytest.fixture
def world(team, lead, gp, manager, outsider, custodian):
    """What each persona has been told: the GP an action assigned in Sam's workspace; Sam and Morgan
    (Sam's agency's manager, not a member) that the GP's red concern there went unanswered past its clock;
    Olly that an action in their own workspace is due."""
    workspace = team.workspace
    action = team.lead.post(workspace, "action", {"title": "Share the health record", "detail": ""},
                            owner=gp.user.public_id, status="open").post
    concern = team.gp.post(workspace, "concern", {"category": "neglect", "detail": "Missed appointments"},
                           rag="red").post
    clocks_run(now=timezone.now() + dt.timedelta(hours=5))
    theirs = Client(outsider, custodian).create_workspace({"name": "Another Child"})
    services.notify(recipients=[outsider.user], kind=Kind.ACTION_DUE, subject="due-1", workspace_id=theirs.pk)
    return {"workspace": workspace, "action": action, "concern": concern, "theirs": theirs}


def mine(persona) -> set[int]:
    return set(Notification.objects.filter(recipient=persona.user).values_list("pk", flat=True))


def page_rows(response) -> list[str]:
    """The list's items as text, one line each."""
    html = response.content.decode()
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item)).strip()
            for item in re.findall(r'<li class="tac-notification[^"]*".*?</li>', html, re.S)]


# --- who may look at all ----------------------------------------------------------------------------------

PAGES = ["/notifications", "/notifications/", "/notifications/settings"]
API_CALLS = [("GET", "/notifications"), ("POST", "/notifications/read")]


@pytest.mark.parametrize("path", PAGES)
def test_it_sends_the_signed_out_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/sign-in/?next=")


def test_it_marks_nothing_for_the_signed_out(client, world, gp):
    response = client.post("/notifications/read")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/sign-in/")
    assert not Notification.objects.filter(read_at__isnull=False).exists()


@pytest.mark.parametrize(("method", "path"), API_CALLS)
def test_it_answers_anonymous_api_calls_with_401(client, method, path):
    response = get(client, path) if method == "GET" else send(client, path, {"all": True})
    refused(response, 401, "not_signed_in")


@pytest.mark.parametrize(("method", "path"), API_CALLS)
def test_it_wants_two_factor_for_the_api(http, gp, method, path):
    session = http(gp, verify=False)
    response = get(session, path) if method == "GET" else send(session, path, {"all": True})
    refused(response, 403, "2fa_required")


def test_it_wants_two_factor_for_the_page(http, gp):
    response = http(gp, verify=False).get("/notifications")
    assert response.status_code == 302 and "/accounts/two-factor" in response["Location"]


# --- the persona matrix: each sees their own --------------------------------------------------------------

@pytest.mark.parametrize("who", ["lead", "gp", "manager", "outsider"])
def test_it_shows_each_person_their_own_notifications_and_no_one_elses(http, world, who, request):
    persona = request.getfixturevalue(who)
    session = http(persona)
    body = ok(get(session, "/notifications"))
    assert {n["id"] for n in body["notifications"]} == mine(persona) != set()
    assert body["unread"] == len(mine(persona))
    others = set(Notification.objects.exclude(recipient=persona.user).values_list("pk", flat=True))
    assert others and not others & {n["id"] for n in body["notifications"]}

    rows = page_rows(session.get("/notifications"))
    assert len(rows) == len(mine(persona))
    expected = {"lead": BREACHED, "gp": ASSIGNED, "manager": BREACHED, "outsider": DUE}[who]
    assert all(expected in row for row in rows), rows
    reference = (world["theirs"] if who == "outsider" else world["workspace"]).reference
    other_reference = (world["workspace"] if who == "outsider" else world["theirs"]).reference
    html = session.get("/notifications").content.decode()
    assert reference in html and other_reference not in html


@pytest.mark.parametrize("who", ["lead", "gp", "manager", "outsider"])
def test_it_marks_nothing_of_anyone_elses(http, world, who, request):
    persona = request.getfixturevalue(who)
    session = http(persona)
    others = sorted(Notification.objects.exclude(recipient=persona.user).values_list("pk", flat=True))
    assert ok(send(session, "/notifications/read", {"ids": others})) == {"marked": 0, "unread": len(mine(persona))}
    assert not Notification.objects.filter(pk__in=others, read_at__isnull=False).exists()

    # The page's button marks all of the caller's own, and only theirs.
    response = session.post("/notifications/read")
    assert response.status_code == 302 and response["Location"] == "/notifications"
    assert not Notification.objects.filter(pk__in=others, read_at__isnull=False).exists()
    assert not Notification.objects.filter(recipient=persona.user, read_at__isnull=True).exists()


def test_it_describes_a_notification_by_metadata_only(http, world, gp):
    (card,) = ok(get(http(gp), "/notifications"))["notifications"]
    workspace, action = world["workspace"], world["action"]
    notification = Notification.objects.get(recipient=gp.user)
    assert card == {
        "id": notification.pk, "kind": "action_assigned", "text": ASSIGNED, "urgent": False,
        "workspace": {"id": str(workspace.public_id), "reference": workspace.reference},
        "seq": action.seq, "post": str(action.post_id),
        "link": f"/workspaces/{workspace.public_id}/#post-{action.post_id}",
        "created_at": card["created_at"], "read_at": None,
    }
    assert dt.datetime.fromisoformat(card["created_at"].replace("Z", "+00:00")) == notification.created_at.replace(
        microsecond=notification.created_at.microsecond // 1000 * 1000)


def test_it_links_each_to_where_the_person_may_go(http, world, lead, manager):
    workspace, concern = world["workspace"], world["concern"]
    (lead_card,) = ok(get(http(lead), "/notifications"))["notifications"]
    assert lead_card["link"] == f"/workspaces/{workspace.public_id}/#post-{concern.post_id}"
    # The manager is told as a manager, and is not a member: a link to the workspace's oversight page (its
    # metadata, which the manager may see), never into the workspace.
    session = http(manager)
    (manager_card,) = ok(get(session, "/notifications"))["notifications"]
    assert (manager_card["text"], manager_card["link"]) == (BREACHED, f"/oversight/workspaces/{workspace.reference}/")
    assert manager_card["workspace"]["reference"] == workspace.reference
    assert session.get(manager_card["link"]).status_code == 200
    html = session.get("/notifications").content.decode()
    assert f"/workspaces/{workspace.public_id}/" not in html


def test_it_links_an_invitation_to_home_where_it_is_answered(http, team, outsider):
    team.lead.invite(team.workspace, outsider.user)
    (card,) = ok(get(http(outsider), "/notifications"))["notifications"]
    assert (card["kind"], card["link"], card["workspace"]["reference"]) == (
        "invitation", "/", team.workspace.reference)


def test_it_shows_a_removed_member_nothing_more_of_the_workspace(http, team, world, gp):
    session = http(gp)
    assert world["workspace"].reference in session.get("/notifications").content.decode()
    assert badge(session.get("/")) == "1"
    team.lead.rotate(world["workspace"], remove=gp.user)
    html = session.get("/notifications").content.decode()
    assert world["workspace"].reference not in html and "You have no notifications." in html
    assert ok(get(session, "/notifications")) == {"unread": 0, "notifications": [], "page": 1, "pages": 1, "count": 0}
    assert badge(session.get("/")) is None


# --- the page and the badge ------------------------------------------------------------------------------

def badge(response) -> str | None:
    """The navigation's unread count, or None while it is hidden."""
    match = re.search(r'<strong class="[^"]*" data-tac-unread( hidden)?><span data-tac-unread-count>(\d+)</span>',
                      response.content.decode())
    assert match, "no badge in the navigation"
    return None if match.group(1) else match.group(2)


def test_it_answers_at_the_emails_link_without_a_redirect(http, world, gp):
    session = http(gp)
    for path in ("/notifications", "/notifications/"):
        response = session.get(path)
        assert response.status_code == 200, path
        assert page_rows(response) == [page_rows(response)[0]] and ASSIGNED in page_rows(response)[0]


def test_it_shows_the_reference_the_post_the_time_and_whether_read(http, world, gp):
    session = http(gp)
    workspace, action = world["workspace"], world["action"]
    (row,) = page_rows(session.get("/notifications"))
    when = timezone.localtime(Notification.objects.get(recipient=gp.user).created_at)
    assert row == (f"Unread {ASSIGNED} Workspace {workspace.reference}, post #{action.seq} · "
                   f"{when:%-d %B %Y} at {when:%H:%M}")
    html = session.get("/notifications").content.decode()
    assert f'href="/workspaces/{workspace.public_id}/#post-{action.post_id}"' in html
    session.post("/notifications/read")
    (row,) = page_rows(session.get("/notifications"))
    assert row.endswith(" · Read") and not row.startswith("Unread")


def test_it_counts_unread_in_the_navigation(http, world, gp, lead):
    session = http(gp)
    assert badge(session.get("/")) == "1"
    services.notify(recipients=[gp.user], kind=Kind.ACTION_DUE, subject="more", workspace_id=world["workspace"].pk)
    assert badge(session.get("/notifications/settings")) == "2"
    response = session.post("/notifications/read", follow=True)
    assert badge(response) is None
    assert "2 notifications marked as read." in response.content.decode()


def test_it_pages_fifty_at_a_time_newest_first(http, gp):
    for n in range(PAGE_SIZE + 1):
        services.notify(recipients=[gp.user], kind=Kind.ACTION_DUE, subject=f"n-{n}")
    session = http(gp)
    newest = Notification.objects.filter(recipient=gp.user).order_by("-created_at", "-id")
    first = ok(get(session, "/notifications"))
    assert (first["page"], first["pages"], first["count"], first["unread"]) == (1, 2, PAGE_SIZE + 1, PAGE_SIZE + 1)
    assert [n["id"] for n in first["notifications"]] == [n.pk for n in newest[:PAGE_SIZE]]
    second = ok(get(session, "/notifications?page=2"))
    assert [n["id"] for n in second["notifications"]] == [newest[PAGE_SIZE].pk]
    refused(get(session, "/notifications?page=3"), 404, "not_found")
    for junk in ("0", "-1", "x", "1.5"):
        refused(get(session, f"/notifications?page={junk}"), 400, "invalid")
    assert len(page_rows(session.get("/notifications"))) == PAGE_SIZE
    html = session.get("/notifications?page=2").content.decode()
    assert len(page_rows(session.get("/notifications?page=2"))) == 1 and 'href="?page=1"' in html


@pytest.mark.parametrize("body", [None, [], {"ids": "1"}, {"ids": [True]}, {"ids": [0]}, {"ids": ["1"]},
                                  {"all": False}, {"all": True, "ids": [1]}, {"ids": list(range(1, 502))}])
def test_it_refuses_a_mark_read_it_cannot_understand(http, gp, body):
    refused(send(http(gp), "/notifications/read", body), 400, "invalid")


def test_it_marks_read_by_id_over_the_api(http, world, gp):
    services.notify(recipients=[gp.user], kind=Kind.ACTION_DUE, subject="more", workspace_id=world["workspace"].pk)
    first, second = sorted(mine(gp))
    session = http(gp)
    assert ok(send(session, "/notifications/read", {"ids": [first]})) == {"marked": 1, "unread": 1}
    assert ok(send(session, "/notifications/read", {"ids": [first]})) == {"marked": 0, "unread": 1}
    assert ok(send(session, "/notifications/read", {"all": True})) == {"marked": 1, "unread": 0}
    assert AuditEvent.objects.filter(kind="notifications.read", actor_id=gp.user.pk).count() == 2


def test_it_refuses_other_methods_in_the_api_shape(http, gp):
    response = http(gp).get("/api/v1/notifications/read")
    refused(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


# --- the email choice -------------------------------------------------------------------------------------

def test_it_saves_the_email_choice_and_audits_it(http, gp):
    session = http(gp)
    html = session.get("/notifications/settings").content.decode()
    assert re.search(r'value="immediate" checked', html) and "Straight away" in html and "In one email a day" in html
    assert "always emailed straight away" in html
    response = session.post("/notifications/settings", {"routine_email": "daily"})
    assert response.status_code == 302 and response["Location"] == "/notifications"
    assert NotificationSettings.objects.get(professional=gp.user).routine_email == "daily"
    (audit,) = AuditEvent.objects.filter(kind="notifications.settings_changed")
    assert (audit.actor_id, audit.data) == (gp.user.pk, {"routine_email": "daily"})
    assert re.search(r'value="daily" checked', session.get("/notifications/settings").content.decode())
    assert "once a day" in session.get("/notifications").content.decode()


@pytest.mark.parametrize("data", [{}, {"routine_email": "weekly"}, {"routine_email": ""}])
def test_it_asks_again_for_a_choice_it_cannot_take(http, gp, data):
    response = http(gp).post("/notifications/settings", data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "There is a problem" in html and 'href="#routine_email"' in html and 'id="routine_email"' in html
    assert "Choose when to get emails about routine notifications" in html
    assert not NotificationSettings.objects.filter(professional=gp.user, routine_email="weekly").exists()
    assert not AuditEvent.objects.filter(kind="notifications.settings_changed").exists()


def test_it_changes_only_the_callers_own_choice(http, gp, lead):
    http(gp).post("/notifications/settings", {"routine_email": "daily"})
    assert services.routine_email_choice(lead.user) == NotificationSettings.Routine.IMMEDIATE
