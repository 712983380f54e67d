"""Lead continuity in Chromium (docs/crypto.md, "Lead continuity"): the lead of a team of three is asked
to name a deputy and does; when a lead with a deputy is offboarded the deputy's device takes the lead in
the next epoch and the team carries on; when a lead with no deputy is offboarded the workspace says it
is frozen and who can unfreeze it, until the key custodians appoint a lead; and an appointment the
custodians did not sign starts nothing, and an epoch built on it is refused.

The team is made through the services in the test process; what the services announce is captured and,
where a test wants the pages to hear it live, delivered through the channel layer from another thread
(the test's own thread runs Playwright's event loop)."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.services import professional_offboard
from messaging import events, services
from messaging.models import CustodianKey, Epoch, LeadAppointment, Membership, Post, Workspace
from tacprotocol import crypto
from tacprotocol.custodian import appointment_sign
from tests.browser.journeys import sign_in
from tests.browser.test_accessibility import Auditor
from tests.browser.test_hostile_server_keys import forge_epoch
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.browser

CHILD = "Robin Example"
EARLIER = "Home visit arranged for Thursday"
TAKEN_OVER = "Carrying on as lead: the review is still on Monday"
APPOINTED = "Appointed lead: I will chair the next meeting"

COMPOSER = "form[data-tac-composer]"
CLOSED = "[data-tac-compose-closed]"
BANNER = "[data-tac-continuity]"
PROMPT = "[data-tac-deputy-prompt]"
WARNINGS = "[data-tac-warning-text]"
ERRORS = "[data-tac-error-summary]"
LIVE = "Live: new posts appear here as they are made."
REFUSED_SIGNER = ("epoch 3's manifest is not signed by the lead the record names, by a deputy, or by a lead the "
                  "custodians appointed")


@dataclass
class Team:
    workspace: Workspace
    lead: Client
    gp: Client
    teacher: Client


@pytest.fixture
def team(lead, gp, outsider, custodian, capture_events) -> Team:
    """Sam leads, with Dr Priya GP and Olly Outsider (a teacher) admitted in epoch 2 and given epoch 1 as
    history; no deputy yet. Posts: the child's details (epoch 1) and an update of the lead's (epoch 2)."""
    clients = Client(lead, custodian), Client(gp, custodian), Client(outsider, custodian)
    workspace = clients[0].create_workspace({"name": CHILD})
    join(clients[0], workspace, clients[1], clients[2])
    for member in clients[1:]:
        clients[0].share_history(workspace, member.user, [1])
    clients[0].post(workspace, "update", {"text": EARLIER})
    workspace.refresh_from_db()
    return Team(workspace, *clients)


@pytest.fixture
def admin(make_persona):
    return make_persona("admin@csc.example", "csc", full_name="Ada Admin", is_agency_admin=True)


def url(workspace: Workspace) -> str:
    return f"/workspaces/{workspace.public_id}/"


def open_workspace(page: Page, persona, workspace: Workspace) -> Page:
    sign_in(page, persona)
    page.goto(url(workspace))
    expect(page.locator("[data-tac-connection]")).to_have_text(LIVE)
    expect(page.get_by_role("heading", name=CHILD)).to_be_visible()
    return page


def wait_until(page: Page, condition: Callable[[], bool], what: str, timeout_ms: int = 15_000) -> None:
    """Poll the database while the page works (Playwright's own waits see only the page)."""
    for _ in range(timeout_ms // 100):
        if condition():
            return
        page.wait_for_timeout(100)
    pytest.fail(f"timed out waiting for {what}")


def deliver_live(captured: list[tuple[str, dict]]) -> None:
    """Send what the services announced (captured by capture_events) to the open pages' sockets, as the
    server would have: from a thread of its own, since this one runs Playwright's event loop."""
    sent = list(captured)
    captured.clear()

    def run():
        layer = get_channel_layer()
        for group, message in sent:
            async_to_sync(events.publish)(layer, group, message)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=10)


# The appointee's own page asked to plan the next epoch naming her lead, with its verified record.
PLAN_AS_LEAD = """async ([id, me]) => {
  const { c, identity, loadWorkspace } = await import('/static/tac/session.js');
  const { memberCards, planEpochMembers } = await import('/static/tac/workspace.js');
  const { identity: mine } = await identity();
  const { detail, keys } = await loadWorkspace(id);
  try {
    planEpochMembers(keys, memberCards(detail), {
      myId: me, myFingerprint: c.fingerprint(mine.signPublic, mine.boxPublic), newLead: me, admit: new Set(),
    });
    return 'planned';
  } catch (error) {
    return `${error.constructor.name}: ${error.message}`;
  }
}"""


def requests_to(page: Page, suffix: str) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if r.url.split("?")[0].endswith(suffix) else None)
    return seen


def post_update(page: Page, text: str) -> None:
    page.get_by_label("Update", exact=True).check()
    page.locator("#post-text").fill(text)
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.locator("[data-tac-posted]")).to_contain_text("Your update was posted as #")


def role_of(page: Page, user) -> object:
    return page.locator(f"[data-tac-member='{user.public_id}'] [data-tac-role]")


def manifest(workspace: Workspace, number: int) -> crypto.Manifest:
    return crypto.manifest_parse(bytes(Epoch.objects.get(workspace=workspace, number=number).manifest))


def expect_genuine(page: Page, text: str, author) -> None:
    post = page.locator(".tac-post", has_text=text)
    expect(post).to_be_visible()
    expect(post.locator("[data-author]")).to_have_text(author.full_name)
    expect(post).not_to_have_class(re.compile(r"\btac-post--refused\b"))
    expect(page.locator(".tac-post--refused")).to_have_count(0)


# --- a. the prompt ---------------------------------------------------------------------------------------


def test_the_lead_of_a_team_of_three_is_asked_to_name_a_deputy(new_page, lead, gp, outsider, team):
    """The lead of three active members with no deputy sees "Name a deputy" (a prompt, not a blocker:
    the composer stays), names the GP, and the new signed manifest and the server both say she is a
    deputy; every member's page shows it, and the prompt is gone. A second deputy from the team list."""
    workspace = team.workspace
    audit = Auditor(new_page(bypass_csp=True))
    page = open_workspace(audit.page, lead, workspace)
    prompt = page.locator(PROMPT)
    expect(prompt.get_by_role("heading", name="Name a deputy")).to_be_visible()
    expect(prompt).to_contain_text("If you leave Team Around the Child, your deputy carries on as lead professional")
    expect(page.locator(COMPOSER)).to_be_visible()
    audit("workspace asking the lead to name a deputy")

    prompt.get_by_role("button", name="Name deputy").click()
    expect(page.locator(ERRORS)).to_contain_text("Choose who will be your deputy")
    assert Epoch.objects.filter(workspace=workspace).count() == 2
    prompt.get_by_label(f"{gp.user.full_name}, {gp.user.agency.name}").check()
    prompt.get_by_role("button", name="Name deputy").click()

    wait_until(page, lambda: Membership.objects.get(workspace=workspace, professional=gp.user).role == "deputy",
               "the server to record the GP as deputy")
    gp_entry = page.locator(f"[data-tac-member='{gp.user.public_id}']")
    expect(gp_entry).to_be_focused()
    expect(role_of(page, gp.user)).to_have_text("Deputy")
    expect(prompt).to_be_hidden()
    epoch = Epoch.objects.get(workspace=workspace, number=3)
    assert epoch.signed_by == lead.user
    assert manifest(workspace, 3).member(gp.user.public_id).role == "deputy"
    assert manifest(workspace, 3).member(outsider.user.public_id).role == "member"
    expect(gp_entry.get_by_role("button", name=f"Stop {gp.user.full_name} being a deputy")).to_be_visible()
    audit("workspace with a deputy")

    for persona in (gp, outsider):
        other = open_workspace(new_page(), persona, workspace)
        expect(role_of(other, gp.user)).to_have_text("Deputy")
        expect(role_of(other, outsider.user)).to_have_text("Member")
        expect(role_of(other, lead.user)).to_have_text("Lead professional")
        expect(other.locator(PROMPT)).to_be_hidden()
        expect(other.locator(".tac-post--refused")).to_have_count(0)
    # The deputy is told what it means, and may invite (the lead alone admits).
    expect(other.locator("[data-tac-lead-only]")).to_be_hidden()
    gp_page = open_workspace(new_page(), gp, workspace)
    expect(gp_page.locator(f"[data-tac-member='{gp.user.public_id}']")).to_contain_text(
        f"You are a deputy: if {lead.user.full_name} leaves Team Around the Child, you carry on as lead professional.")
    expect(gp_page.get_by_role("heading", name="Invite a professional")).to_be_visible()

    # A second deputy, from the team list: asked first, then the keys are renewed.
    teacher_entry = page.locator(f"[data-tac-member='{outsider.user.public_id}']")
    teacher_entry.get_by_role("button", name=f"Make {outsider.user.full_name} a deputy").click()
    confirm = teacher_entry.locator("[data-tac-confirm]")
    expect(confirm).to_contain_text("if you leave Team Around the Child they carry on as lead professional")
    confirm.get_by_role("button", name=f"Yes, make {outsider.user.full_name} a deputy").click()
    wait_until(page, lambda: Membership.objects.get(workspace=workspace, professional=outsider.user).role == "deputy",
               "the server to record the teacher as deputy")
    expect(role_of(page, outsider.user)).to_have_text("Deputy")
    expect(role_of(page, gp.user)).to_have_text("Deputy")
    assert {m.public_id for m in manifest(workspace, 4).members if m.role == "deputy"} == {
        gp.user.public_id, outsider.user.public_id}
    audit.assert_clean(2)


# --- b. a deputy takes over ------------------------------------------------------------------------------


def test_a_deputy_takes_over_when_the_lead_is_offboarded(new_page, lead, gp, outsider, team, admin,
                                                         capture_events):
    """The lead named the GP deputy (epoch 3), then is offboarded: the server makes her the lead. Her open
    page hears of it and asks her to take over (only the server says the lead left); when she does, her
    device starts epoch 4, signed by her and naming her lead; meanwhile the teacher is told she is taking
    over and cannot post. Then she posts, and the teacher reads it live as
    hers, with who renewed the keys."""
    workspace = team.workspace
    team.lead.rotate(workspace, deputies=[gp.user])
    gp_page = open_workspace(new_page(), gp, workspace)
    epochs = requests_to(gp_page, "/epochs")

    professional_offboard(admin=admin.user, professional=lead.user)
    workspace.refresh_from_db()
    assert workspace.lead == gp.user
    teacher = open_workspace(new_page(), outsider, workspace)
    banner = teacher.locator(BANNER)
    expect(banner).to_contain_text(
        f"{gp.user.full_name} is taking over as lead professional after {lead.user.full_name} left: their device "
        "renews the keys when they next open this workspace. Until then nothing new can be shared.")
    expect(teacher.locator(COMPOSER)).to_be_hidden()
    expect(teacher.locator(CLOSED)).to_have_text(
        f"Nothing new can be shared until {gp.user.full_name}'s device renews the keys.")
    assert epochs == []

    deliver_live(capture_events)  # membership.changed: the GP's open page asks her to take over
    # Only the server says the lead left: nothing is signed until the deputy says so.
    gp_banner = gp_page.locator(BANNER)
    expect(gp_banner).to_contain_text("Take over as lead professional")
    expect(gp_banner).to_contain_text(f"Team Around the Child says {lead.user.full_name} left on ")
    expect(gp_page.locator(COMPOSER)).to_be_hidden()
    gp_page.wait_for_timeout(500)
    assert epochs == []
    gp_page.get_by_role("button", name="Take over as lead professional").click()
    wait_until(gp_page, lambda: Post.objects.filter(workspace=workspace, epoch__number=4, kind="details").exists(),
               "the deputy's page to start epoch 4 and carry the details into it")
    epoch = Epoch.objects.get(workspace=workspace, number=4)
    assert epoch.signed_by == gp.user
    assert manifest(workspace, 4).member(gp.user.public_id).role == "lead"
    assert manifest(workspace, 4).member(lead.user.public_id) is None
    assert manifest(workspace, 4).member(outsider.user.public_id).role == "member"
    assert len(epochs) == 1
    expect(gp_page.locator(WARNINGS)).not_to_contain_text("could not be renewed")
    expect(role_of(gp_page, gp.user)).to_have_text("Lead professional")

    expect(banner).to_be_hidden()  # the teacher's page heard of the new epoch
    expect(teacher.locator(COMPOSER)).to_be_visible()
    post_update(gp_page, TAKEN_OVER)
    expect_genuine(teacher, TAKEN_OVER, gp.user)
    history = teacher.locator("[data-tac-key-history]")
    expect(history).to_contain_text(f"Keys renewed by {gp.user.full_name}, deputy, on ")
    expect(history).to_contain_text("taking over as lead professional")
    teacher.reload()
    expect(teacher.locator("[data-tac-connection]")).to_have_text(LIVE)
    expect_genuine(teacher, TAKEN_OVER, gp.user)
    expect_genuine(teacher, EARLIER, lead.user)
    expect(role_of(teacher, gp.user)).to_have_text("Lead professional")
    expect(teacher.locator(BANNER)).to_be_hidden()


# --- c. frozen, then a lead appointed by the custodians ---------------------------------------------------


def test_a_frozen_workspace_says_why_until_the_custodians_appoint_a_lead(new_page, lead, gp, outsider, team, admin,
                                                                         custodian, capture_events):
    """A lead with no deputy is offboarded: every member sees that the workspace is frozen, why, and who
    can unfreeze it, and has no form to post with. Two custodians sign an appointment of the GP offline
    (after comparing her safety number); once installed, her open page starts the next epoch as lead,
    the message goes, and the teacher reads what she posts."""
    workspace = team.workspace
    professional_offboard(admin=admin.user, professional=lead.user)
    audit = Auditor(new_page(bypass_csp=True))
    gp_page = open_workspace(audit.page, gp, workspace)
    teacher = open_workspace(new_page(), outsider, workspace)
    for page in (gp_page, teacher):
        banner = page.locator(BANNER)
        expect(banner).to_contain_text("This workspace is frozen")
        expect(banner).to_contain_text(re.compile(
            rf"Its lead professional, {lead.user.full_name}, left Team Around the Child on \d{{1,2}} \w+ \d{{4}} "
            r"and had named no deputy, so nobody can renew its keys and nothing new can be shared\."))
        expect(banner).to_contain_text("Two of your site's key custodians can appoint a new lead from this team: ask "
                                       "your Team Around the Child administrator.")
        expect(page.locator(COMPOSER)).to_be_hidden()
        expect(page.locator(CLOSED)).to_have_text("Nothing new can be shared while this workspace is frozen.")
        expect_genuine(page, EARLIER, lead.user)  # still readable
        expect(page.get_by_role("button", name=re.compile("^Acknowledge"))).to_have_count(0)
        expect(page.locator("[data-tac-lead-only]")).to_be_hidden()
    audit("frozen workspace")
    audit.assert_clean(1)
    assert Epoch.objects.filter(workspace=workspace).count() == 2

    request = services.lead_appointment_request(workspace=workspace, appointee=gp.user, actor_label="test")
    fingerprint = base64.b64decode(request["fingerprint"])
    appointment = appointment_sign(request, custodian, crypto.safety_number(fingerprint))
    capture_events.clear()
    services.lead_appointment_install(appointment=appointment, actor_label="test")
    deliver_live(capture_events)  # membership.changed: the GP's open page takes the lead
    wait_until(gp_page, lambda: Post.objects.filter(workspace=workspace, epoch__number=3, kind="details").exists(),
               "the appointee's page to start epoch 3 and carry the details into it")
    epoch = Epoch.objects.get(workspace=workspace, number=3)
    assert epoch.signed_by == gp.user
    assert manifest(workspace, 3).member(gp.user.public_id).role == "lead"
    assert manifest(workspace, 3).member(lead.user.public_id) is None

    expect(gp_page.locator(BANNER)).to_be_hidden()
    expect(gp_page.locator(COMPOSER)).to_be_visible()
    post_update(gp_page, APPOINTED)
    expect(teacher.locator(BANNER)).to_be_hidden()
    expect_genuine(teacher, APPOINTED, gp.user)
    expect(teacher.locator("[data-tac-key-history]")).to_contain_text(
        f"{gp.user.full_name} was appointed lead by the key custodians")
    teacher.reload()
    expect(teacher.locator("[data-tac-connection]")).to_have_text(LIVE)
    expect_genuine(teacher, APPOINTED, gp.user)
    expect(teacher.locator(COMPOSER)).to_be_visible()


# --- d. a forged appointment --------------------------------------------------------------------------------


def test_an_appointment_the_custodians_did_not_sign_is_refused(new_page, lead, gp, outsider, team, admin):
    """A hostile server unfreezes the workspace itself: an appointment of the GP signed by a key that is not
    the pinned custodian's, and the GP made lead. Her device refuses to start an epoch and says why; and
    an epoch the server builds on it, signed with her own key, is refused by the teacher's page."""
    workspace = team.workspace
    professional_offboard(admin=admin.user, professional=lead.user)
    workspace.refresh_from_db()
    current = Epoch.objects.get(workspace=workspace, number=workspace.current_epoch)
    key = gp.user.current_identity_key()
    fingerprint = crypto.fingerprint(bytes(key.sign_public), bytes(key.box_public))
    created_ms = int(timezone.now().timestamp() * 1000)
    statement = crypto.lead_appointment_statement(workspace.public_id, current.number, bytes(current.manifest_hash),
                                                  gp.user.public_id, fingerprint, created_ms)
    LeadAppointment.objects.create(
        workspace=workspace, after_epoch=current.number, manifest_hash=bytes(current.manifest_hash), appointee=gp.user,
        fingerprint=fingerprint, created_ms=created_ms,
        signature=crypto.custodian_identity(bytes(32)).sign(statement),
        custodian_key=CustodianKey.objects.get(is_current=True))
    Membership.objects.filter(workspace=workspace, professional=gp.user).update(role=Membership.Role.LEAD)
    Workspace.objects.filter(pk=workspace.pk).update(lead=gp.user)

    gp_page = new_page()
    epochs = requests_to(gp_page, "/epochs")
    open_workspace(gp_page, gp, workspace)
    banner = gp_page.locator(BANNER)
    expect(banner).to_contain_text("Your device cannot take over this workspace")
    expect(banner).to_contain_text(
        f"The server names you lead professional after {lead.user.full_name} left, but the signed record does not "
        "show that you may take over: you are not a deputy, and no appointment by the key custodians checks out.")
    expect(gp_page.locator(COMPOSER)).to_be_hidden()
    expect(gp_page.locator(CLOSED)).to_have_text("Nothing new can be shared until this is resolved.")
    # What the page's rule says, asked directly: she may not sign the next manifest, as the lead or otherwise.
    assert gp_page.evaluate(PLAN_AS_LEAD, [str(workspace.public_id), str(gp.user.public_id)]) == (
        "TrustError: only the lead or a deputy the signed record names can start a new key epoch")
    gp_page.wait_for_timeout(1500)
    assert epochs == []
    assert Epoch.objects.filter(workspace=workspace).count() == 2

    # What her device would have signed, had it believed the server: the teacher's page refuses it.
    forged, _key = forge_epoch(workspace, team.gp.identity, key, [gp.user, outsider.user])
    assert forged.number == 3
    teacher = new_page()
    sign_in(teacher, outsider)
    teacher.goto(url(workspace))
    expect(teacher.locator(WARNINGS)).to_contain_text(
        f"This workspace's record could not be verified, so nothing from it is shown: {REFUSED_SIGNER}")
    expect(teacher.locator("[data-tac-stopped]")).to_be_visible()
    expect(teacher.locator(COMPOSER)).to_be_hidden()
    expect(teacher.locator(".tac-post")).to_have_count(0)


# --- two devices renewing at once ------------------------------------------------------------------------


def test_a_deputy_whose_lead_renewed_the_keys_first_carries_on_quietly(new_page, gp, team):
    """The server asks for new keys; the deputy's device starts an epoch, but the lead's device gets there
    first (done here while the deputy's request is on its way). The server refuses the second with a
    conflict: the deputy's page reads the record again and says nothing alarming, and she posts in the
    lead's new epoch."""
    workspace = team.workspace
    team.lead.rotate(workspace, deputies=[gp.user])  # epoch 3
    Workspace.objects.filter(pk=workspace.pk).update(rotation_required=True)
    answers: list[int] = []

    def lead_first(route):
        # Playwright calls this in a context of its own, where Django opens a connection of its own: close it.
        try:
            team.lead.rotate(workspace)  # epoch 4, from the lead's device
        finally:
            connection.close()
        response = route.fetch()
        answers.append(response.status)
        route.fulfill(response=response)

    page = new_page()
    page.route("**/api/v1/workspaces/*/epochs", lead_first)
    open_workspace(page, gp, workspace)
    wait_until(page, lambda: answers, "the deputy's device to try epoch 4")
    assert answers == [409]
    epoch = Epoch.objects.get(workspace=workspace, number=4)
    assert epoch.signed_by == team.lead.user
    assert Epoch.objects.filter(workspace=workspace).count() == 4
    expect(page.locator(COMPOSER)).to_be_visible()
    post_update(page, TAKEN_OVER)
    assert Post.objects.get(workspace=workspace, kind="update", author=gp.user).epoch.number == 4
    expect(page.locator(WARNINGS)).not_to_contain_text("could not be renewed")
    expect(page.locator("[data-tac-warnings]")).to_be_hidden()
    expect(page.locator(ERRORS)).to_be_hidden()
