"""The issue's journey in Chromium: the lead opens a workspace, invites a GP; the GP (a second browser
context) accepts and posts a red concern; the lead sees it live without reload, acknowledges it and
creates an action the GP completes. Afterwards neither the PostgreSQL dump nor the Redis traffic holds
anything typed into the browsers."""

from __future__ import annotations

import subprocess
import threading

import pytest
import redis
from django.conf import settings
from django.db import connection
from playwright.sync_api import Page, expect

from messaging.models import Post, Workspace
from tests.browser.journeys import expected_safety_number, sign_in

pytestmark = pytest.mark.browser

CHILD = "Jamie Quintrell-Okoro"
NHS = "9434765919"
ADDRESS = "17 Larkspur Close, Northshire"
CONCERN = "Unexplained bruising on the upper arm, seen at the 8-week check"
ACTION = "Arrange a child protection medical"
NOTE = "Medical done at Riverside, findings shared by phone"


class RedisMonitor:
    """Everything sent to Redis while the journey runs (MONITOR), to prove no plaintext passes through."""

    def __init__(self):
        self.lines: list[bytes] = []
        self.conn = redis.Redis.from_url(settings.REDIS_URL).connection_pool.get_connection()
        self.conn.send_command("MONITOR")
        self.conn.read_response()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                if self.conn.can_read(timeout=0.2):
                    self.lines.append(repr(self.conn.read_response()).encode())
            except Exception:  # the connection is closed at the end
                return

    def close(self) -> bytes:
        self.stop.set()
        self.thread.join(timeout=2)
        self.conn.disconnect()
        return b"\n".join(self.lines)


def open_workspace(lead: Page) -> str:
    lead.get_by_role("link", name="Open a workspace for a child").click()
    lead.get_by_label("NHS number").fill("9434765918")  # wrong check digit: refused in the browser
    lead.get_by_label("Child's full name").fill(CHILD)
    lead.get_by_role("button", name="Open workspace").click()
    expect(lead.locator(".govuk-error-summary")).to_contain_text("valid NHS number")
    lead.get_by_label("NHS number").fill(NHS)
    lead.get_by_label("Address").fill(ADDRESS)
    lead.get_by_role("button", name="Open workspace").click()
    expect(lead.get_by_role("heading", name=CHILD)).to_be_visible()
    return lead.url


def test_it_runs_the_team_around_the_child_live(new_page, lead, gp, custodian):
    monitor = RedisMonitor()
    lead_page, gp_page = new_page(), new_page()
    sign_in(lead_page, lead)
    url = open_workspace(lead_page)

    lead_page.get_by_label("Name or agency").fill("Riverside")
    lead_page.get_by_role("button", name="Search").click()
    lead_page.get_by_role("button", name=f"Invite {gp.user.full_name}").click()
    expect(lead_page.locator("[data-tac-invite-results]")).to_contain_text("is invited")

    sign_in(gp_page, gp)
    gp_page.get_by_role("button", name="Accept").click()
    # The invitation is answered: the row stays, "Waiting for <lead> to share the keys" or, if the lead's
    # device was quicker than this page, already a link to the workspace.
    expect(gp_page.get_by_role("button", name="Accept")).to_have_count(0)
    expect(gp_page.locator("[data-tac-workspace-row]")).to_have_count(1)
    # The lead's open page hears of the acceptance and asks the lead to compare the GP's safety number,
    # then admit them (a key epoch that includes them) and share the earlier record, with a reason.
    admit = lead_page.locator(f"[data-tac-member='{gp.user.public_id}']")
    expect(admit).to_contain_text(expected_safety_number(gp.user))
    admit.get_by_label("Why they need the earlier record").fill("The GP holds the health record")
    admit.get_by_role("button", name=f"Admit {gp.user.full_name}").click()
    expect(lead_page.locator(f"[data-tac-safety='{gp.user.public_id}']")).to_be_visible()
    expect(lead_page.locator(".tac-post", has_text="shared the earlier record")).to_contain_text(
        "The GP holds the health record")

    gp_page.goto(url)
    expect(gp_page.get_by_role("heading", name=CHILD)).to_be_visible()  # details carried into the new epoch
    gp_page.get_by_label("Red").check()
    gp_page.get_by_label("Category").select_option(label="Physical abuse")
    gp_page.get_by_label("What is the concern?").fill(CONCERN)
    gp_page.get_by_role("button", name="Post", exact=True).click()

    concern = lead_page.locator(".tac-post", has_text=CONCERN)
    expect(concern).to_be_visible()  # live, no reload
    expect(concern).to_contain_text("Red")
    expect(concern).to_contain_text("Physical abuse")
    concern.get_by_role("button", name="Acknowledge").click()
    expect(gp_page.locator(".tac-post", has_text=CONCERN)).to_contain_text(
        f"Read and accepted by {lead.user.full_name}, {lead.user.agency.name}")

    lead_page.get_by_role("radio", name="Action").check()
    lead_page.get_by_label("What needs doing?").fill(ACTION)  # shown once Action is chosen
    lead_page.get_by_label("Who will do it?").select_option(str(gp.user.public_id))
    lead_page.get_by_role("button", name="Post", exact=True).click()

    action = gp_page.locator(".tac-post", has_text=ACTION)
    expect(action).to_contain_text(f"Owner: {gp.user.full_name}")
    action.get_by_role("button", name="Mark done").click()
    action.get_by_label("Completion note").fill(NOTE)
    action.get_by_role("button", name="Save").click()
    lead_action = lead_page.locator(".tac-post", has_text=ACTION)
    expect(lead_action).to_contain_text(f"Marked done by {gp.user.full_name}: {NOTE}")
    expect(lead_action).to_contain_text("Status: done")

    workspace = Workspace.objects.get()
    assert workspace.current_rag == "red"
    assert list(Post.objects.filter(workspace=workspace).values_list("kind", flat=True).order_by("seq")) == [
        "details", "details", "history_shared", "concern", "acknowledgement", "action", "action_status"]
    action_post = Post.objects.get(kind="action")
    assert (action_post.owner_id, action_post.status) == (gp.user.pk, "open")  # the record is append-only

    redis_traffic = monitor.close()
    dump = pg_dump()
    # Whole strings and distinctive fragments of them (a partial leak counts too).
    typed = [CHILD, NHS, ADDRESS, CONCERN, ACTION, NOTE, lead.password, gp.password,
             "Quintrell", "Larkspur", "bruising", "protection medical", "findings shared"]
    for needle in typed:
        assert needle.encode() not in dump, f"{needle!r} is in the database dump"
        assert needle.encode() not in redis_traffic, f"{needle!r} passed through Redis"
    assert b"post.created" in redis_traffic  # the monitor did see the fan-out
    assert gp.user.agency.name.encode() in dump  # and the dump holds the plaintext that is meant to be there


def pg_dump() -> bytes:
    params = connection.settings_dict
    return subprocess.run(
        ["pg_dump", "-h", params["HOST"] or "127.0.0.1", "-p", str(params["PORT"] or 5432), "-U",
         params["USER"] or "postgres", "--data-only", params["NAME"]],
        check=True, capture_output=True, timeout=60,
    ).stdout


def test_it_shows_the_child_name_on_the_home_page(page, lead, custodian, capture_events):
    from tests.messaging.factories import Client

    Client(lead, custodian).create_workspace({"name": "Alex Home-Page"})
    sign_in(page, lead)
    row = page.locator("[data-tac-workspace-row]")
    expect(row).to_contain_text("TAC-")
    expect(row.locator("[data-tac-child-name]")).to_have_text("Alex Home-Page")  # decrypted in the browser
