"""What a new user and an accessibility audit hit on the workspace page (issue 9, item 5), in Chromium:
an ended session said in words (and a pending post failed with it), a second tab asking for the password
in place, confirmations before removing, handing over the lead or leaving, limits on free text and due
dates, brief announcements instead of a live thread, focus kept where the person works, buttons named
after their post, a layout that fits 320 px, "N new posts", and posts seen live counted as read."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from messaging.models import Membership, Post
from tests.browser.journeys import sign_in, sign_out
from tests.browser.test_accessibility import NARROW, Auditor
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.browser

SIGNED_OUT = "You have been signed out. Sign in again to carry on."


@pytest.fixture
def team(lead, gp, custodian, capture_events):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client)
    concern = gp_client.post(workspace, "concern", {"category": "neglect", "detail": "Missed two appointments"},
                             rag="red").post
    return workspace, lead_client, gp_client, concern


def url(workspace) -> str:
    return f"/workspaces/{workspace.public_id}/"


def open_workspace(page: Page, persona, workspace) -> None:
    sign_in(page, persona)
    page.goto(url(workspace))
    expect(page.locator("[data-tac-connection]")).to_have_text("Live: new posts appear here as they are made.")


def post_update(page: Page, text: str) -> None:
    page.get_by_label("Update", exact=True).check()
    page.locator("#post-text").fill(text)
    page.get_by_role("button", name="Post", exact=True).click()


def test_it_says_the_session_ended_in_another_tab_and_fails_the_pending_post(new_page, lead, team):
    workspace, *_ = team
    page = new_page()
    held = []

    def relay(ws):
        # Between the page and the server: every frame passes except posts, which stay pending.
        server = ws.connect_to_server()
        ws.on_message(lambda message: held.append(message) if '"post.create"' in str(message) else server.send(message))

    page.route_web_socket(re.compile(r".*/ws/$"), relay)
    open_workspace(page, lead, workspace)
    post_update(page, "This one never reaches the server")
    expect(page.get_by_role("button", name="Posting…")).to_be_visible()
    assert held

    other = page.context.new_page()
    other.goto("/")
    sign_out(other)

    line = page.locator("[data-tac-connection]")
    expect(line).to_contain_text("You have been signed out")
    expect(line.get_by_role("link", name="Sign in again")).to_have_attribute(
        "href", f"/accounts/sign-in/?next={url(workspace).replace('/', '%2F')}")
    expect(page.locator("[data-tac-error-summary]")).to_contain_text(SIGNED_OUT)
    expect(page.locator("form[data-tac-composer]")).to_be_hidden()
    expect(line).not_to_contain_text("Live")
    assert not Post.objects.filter(workspace=workspace, kind="update").exists()


# A socket whose handshake the server refuses: the page sees only an abnormal close, never 4403. (Run
# in the page, in place of the browser's WebSocket, so the refusal comes at a moment the test chooses.)
REFUSED_SOCKETS_JS = """async () => {
  window.WebSocket = class extends EventTarget {
    static OPEN = 1;
    constructor() {
      super();
      this.readyState = 0;
      setTimeout(() => { this.readyState = 3; this.dispatchEvent(Object.assign(new Event('close'), { code: 1006 })); }, 10);
    }
    send() {}
    close() {}
  };
  const { Live } = await import('/static/tac/live.js');
  const live = new Live();
  return await new Promise((resolve) => {
    live.addEventListener('status', (event) => { if (event.detail.ended) resolve(event.detail.reason); });
    setTimeout(() => resolve(null), 3000);
  });
}"""


def test_a_socket_refused_after_the_session_ended_stops_and_says_so(new_page, lead):
    """The session ended while the socket was down (a dropped connection, then a sign-out elsewhere): the
    reconnect is refused at the handshake, which a page sees as an abnormal close, not 4403. The page
    asks the server whether the session has ended and stops, rather than "Reconnecting..." for ever; with
    the session still on, it keeps trying. (It kept trying for ever before.)"""
    signed_in = new_page()
    sign_in(signed_in, lead)
    assert signed_in.evaluate(REFUSED_SOCKETS_JS) is None  # still signed in: it carries on reconnecting
    signed_out = new_page()
    signed_out.goto("/accounts/sign-in/")
    assert signed_out.evaluate(REFUSED_SOCKETS_JS) == SIGNED_OUT


def test_it_asks_a_second_tab_for_the_password_in_place_and_is_live_only_then(new_page, lead, team):
    workspace, *_ = team
    page = new_page()
    open_workspace(page, lead, workspace)

    second = page.context.new_page()  # same session, but its own sessionStorage: no wrapping key
    second.goto(url(workspace))
    unlock = second.locator("[data-tac-unlock]")
    expect(unlock.get_by_label("Enter your password to unlock your encryption keys in this tab")).to_be_visible()
    line = second.locator("[data-tac-connection]")
    expect(line).to_have_text("Not live: unlock your encryption keys to read this workspace.")
    expect(second.locator("[data-tac-error-summary]")).to_be_hidden()
    expect(second.locator(".tac-post")).to_have_count(0)

    unlock.get_by_label("Enter your password").fill(lead.password)
    unlock.get_by_role("button", name="Unlock").click()
    expect(second.locator(".tac-post", has_text="Missed two appointments")).to_be_visible()
    expect(line).to_have_text("Live: new posts appear here as they are made.")
    expect(unlock).to_be_hidden()


def test_it_confirms_before_removing_a_member_handing_over_the_lead_or_leaving(new_page, lead, gp, team):
    workspace, *_ = team
    page = new_page()
    open_workspace(page, lead, workspace)
    member = page.locator(f"[data-tac-member='{gp.user.public_id}']")
    remove = member.get_by_role("button", name=f"Remove {gp.user.full_name}", exact=True)
    remove.click()
    warning = member.locator("[data-tac-confirm]")
    expect(warning).to_contain_text("keys are renewed without them")
    expect(warning.locator(".govuk-warning-text__text")).to_be_focused()
    assert Membership.objects.get(workspace=workspace, professional=gp.user).state == Membership.State.ACTIVE
    warning.get_by_role("button", name="Cancel").click()
    expect(warning).to_have_count(0)
    expect(remove).to_be_focused()

    member.get_by_role("button", name=f"Make {gp.user.full_name} the lead").click()
    expect(member.locator("[data-tac-confirm]")).to_contain_text("becomes the lead professional")
    member.locator("[data-tac-confirm]").get_by_role("button", name="Cancel").click()
    assert Membership.objects.get(workspace=workspace, professional=lead.user).role == Membership.Role.LEAD

    gp_page = new_page()
    open_workspace(gp_page, gp, workspace)
    gp_page.get_by_role("button", name="Leave this workspace").click()
    confirm = gp_page.locator("[data-tac-member-only] [data-tac-confirm]")
    expect(confirm).to_contain_text("your access ends now")
    assert Membership.objects.get(workspace=workspace, professional=gp.user).state == Membership.State.ACTIVE
    confirm.get_by_role("button", name="Yes, leave this workspace").click()
    expect(gp_page.get_by_role("heading", name=f"Welcome, {gp.user.full_name}")).to_be_visible()
    assert Membership.objects.get(workspace=workspace, professional=gp.user).state == Membership.State.LEFT



def test_it_caps_free_text_and_due_dates_and_wants_a_completion_note(new_page, lead, gp, team):
    workspace, *_ = team
    page = new_page()
    open_workspace(page, lead, workspace)
    expect(page.locator("#post-text-info")).to_contain_text("20000 characters")

    page.get_by_label("Update", exact=True).check()
    page.locator("#post-text").fill("x" * 20_001)
    expect(page.locator("[data-tac-composer] .govuk-character-count__status")).to_contain_text(
        "You have 1 character too many")
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.locator("[data-tac-error-summary]")).to_contain_text("The text must be 20,000 characters or fewer")
    assert not Post.objects.filter(workspace=workspace, kind="update").exists()

    page.locator("#post-text").fill("")
    page.get_by_label("Action", exact=True).check()
    page.get_by_label("What needs doing?").fill("Book the review")
    for due in ("2020-01-01", "9999-12-31"):
        page.locator("#action-due").fill(due)
        page.get_by_role("button", name="Post", exact=True).click()
        expect(page.locator("[data-tac-error-summary]")).to_contain_text(
            "The due date must be today or later, and no more than 2 years ahead")
    assert not Post.objects.filter(workspace=workspace, kind="action").exists()
    page.locator("#action-due").fill("")
    page.get_by_role("button", name="Post", exact=True).click()
    expect(page.locator("[data-tac-posted]")).to_contain_text("Your action was posted as #")

    action = page.locator(".tac-post[data-kind='action']")
    action.get_by_role("button", name=re.compile(r"^Mark done")).click()
    form = action.locator("form.tac-inline")
    expect(form.get_by_label(re.compile(r"^Completion note for action #\d+ from"))).to_be_focused()
    form.get_by_role("button", name="Save").click()
    expect(page.locator("[data-tac-error-summary]")).to_contain_text("Enter a completion note: say what was done")
    assert not Post.objects.filter(workspace=workspace, kind="action_status").exists()
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_have_count(0)
    expect(action.get_by_role("button", name=re.compile(r"^Mark done"))).to_be_focused()


def test_it_names_each_control_after_its_post_and_links_a_reply_to_its_parent(new_page, lead, gp, team):
    workspace, lead_client, gp_client, concern = team
    gp_client.post(workspace, "update", {"text": "Second post"})
    page = new_page()
    open_workspace(page, lead, workspace)
    name = f"concern #{concern.seq} from {gp.user.full_name}"
    expect(page.get_by_role("heading", name=f"Concern #{concern.seq} from {gp.user.full_name}, red")).to_have_count(1)
    for label in ("Acknowledge", "Reply to"):
        expect(page.get_by_role("button", name=f"{label} {name}", exact=True)).to_have_count(1)
    expect(page.get_by_role("button", name="Reply", exact=True)).to_have_count(0)

    page.get_by_role("button", name=f"Reply to {name}", exact=True).click()
    expect(page.locator("[data-tac-replying]")).to_contain_text(f"Replying to {name}")
    expect(page.locator("#post-text")).to_be_focused()
    page.get_by_label("Update", exact=True).check()
    page.locator("#post-text").fill("Replying to the concern")
    page.get_by_role("button", name="Post", exact=True).click()
    reply = page.locator(".tac-post", has_text="Replying to the concern")
    parent_link = reply.locator("[data-parent]").get_by_role("link", name=name)
    expect(parent_link).to_have_attribute("href", f"#post-{concern.post_id}")

    own = f"update #{reply.get_attribute('data-seq')} from {lead.user.full_name}"
    for label in ("Edit", "Retract"):
        expect(page.get_by_role("button", name=f"{label} {own}", exact=True)).to_have_count(1)


def test_it_keeps_focus_where_the_person_works(new_page, lead, gp, team):
    workspace, _, _, concern = team
    page = new_page()
    open_workspace(page, lead, workspace)

    post_update(page, "Home visit booked")
    posted = page.locator("[data-tac-posted]")
    expect(posted).to_contain_text("Your update was posted as #")
    expect(posted).to_be_focused()

    name = f"concern #{concern.seq} from {gp.user.full_name}"
    page.get_by_role("button", name=f"Acknowledge {name}", exact=True).click()
    article = page.locator(f"#post-{concern.post_id} article")
    expect(article).to_be_focused()
    expect(article).to_contain_text(f"Read and accepted by {lead.user.full_name}")

    # Someone else's change re-renders the post holding focus: focus stays on the same control.
    gp_page = new_page()
    open_workspace(gp_page, gp, workspace)
    reply = page.get_by_role("button", name=f"Reply to {name}", exact=True)
    reply.focus()
    gp_own = gp_page.locator(f"#post-{concern.post_id}")
    gp_own.get_by_role("button", name=re.compile(r"^Edit")).click()
    gp_own.locator("form.tac-inline textarea").fill("Missed two appointments and a third")
    gp_own.locator("form.tac-inline").get_by_role("button", name="Save").click()
    expect(page.locator(f"#post-{concern.post_id}")).to_contain_text(f"Edited by {gp.user.full_name}")
    expect(reply).to_be_focused()


def test_it_announces_only_new_posts_briefly(new_page, lead, gp, team):
    workspace, *_ = team
    page = new_page()
    open_workspace(page, lead, workspace)
    expect(page.locator("[data-tac-thread]")).not_to_have_attribute("aria-live", re.compile(".*"))
    announcer = page.locator("[data-tac-announce]")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer).to_have_text("")

    gp_page = new_page()
    open_workspace(gp_page, gp, workspace)
    gp_page.get_by_label("Concern", exact=True).check()
    gp_page.get_by_label("Red").check()
    gp_page.locator("#post-text").fill("Bruise seen at nursery")
    gp_page.get_by_role("button", name="Post", exact=True).click()
    expect(announcer).to_have_text(f"New concern from {gp.user.full_name}, {gp.user.agency.name}, rated red.")
    expect(announcer).not_to_contain_text("Bruise")


def test_it_fits_an_action_post_at_320_px(new_page, lead, gp, team):
    workspace, lead_client, *_ = team
    lead_client.post(workspace, "action", {"title": "Book the review", "detail": ""}, owner=lead.user.public_id,
                     status="open")
    page = new_page()
    page.set_viewport_size(NARROW)
    open_workspace(page, lead, workspace)
    action = page.locator(".tac-post[data-kind='action']")
    expect(action).to_be_visible()
    assert action.locator(".govuk-button").count() <= 1  # Mark done; the rest are links on one line
    overflow = action.evaluate("(el) => [...el.querySelectorAll('*')].filter((x) => x.getClientRects().length"
                               " && !x.closest('.govuk-visually-hidden') && x.getBoundingClientRect().right"
                               " > window.innerWidth + 1).length")
    assert overflow == 0


def test_it_shows_new_posts_below_the_screen_and_counts_posts_seen_live_as_read(new_page, lead, gp, team):
    workspace, lead_client, *_ = team
    for n in range(12):
        lead_client.post(workspace, "update", {"text": f"Earlier update {n}\n\n\n\n"})
    page = new_page()
    open_workspace(page, lead, workspace)
    page.evaluate("window.scrollTo(0, 0)")

    gp_page = new_page()
    open_workspace(gp_page, gp, workspace)
    post_update(gp_page, "A new post at the bottom")
    jump = page.locator("[data-tac-new-posts]")
    expect(jump).to_have_text("1 new post")
    jump.click()
    newest = page.locator(".tac-post", has_text="A new post at the bottom")
    expect(newest.locator("article")).to_be_focused()
    expect(page.locator("[data-tac-new-posts-bar]")).to_be_hidden()

    # Seen live, so read: home shows nothing new for it.
    last = Post.objects.filter(workspace=workspace).order_by("-seq").values_list("seq", flat=True).first()
    for _ in range(50):
        if Membership.objects.get(workspace=workspace, professional=lead.user).last_read_seq == last:
            break
        page.wait_for_timeout(100)
    assert Membership.objects.get(workspace=workspace, professional=lead.user).last_read_seq == last
    page.goto("/")
    expect(page.locator("[data-tac-workspace-row]", has_text="Robin Example")).not_to_contain_text("new")


def test_it_passes_axe_with_every_new_control_open_and_works_by_keyboard(new_page, lead, gp, team):
    workspace, lead_client, *_ = team
    lead_client.post(workspace, "action", {"title": "Book the review", "detail": ""}, owner=lead.user.public_id,
                     status="open")
    audit = Auditor(new_page(bypass_csp=True))
    page = audit.page
    open_workspace(page, lead, workspace)
    action = page.locator(".tac-post[data-kind='action']")

    # By keyboard: Tab to "Mark done", Enter opens the note, Escape-free Cancel by keyboard gives focus back.
    mark_done = action.get_by_role("button", name=re.compile(r"^Mark done"))
    mark_done.focus()
    page.keyboard.press("Enter")
    form = action.locator("form.tac-inline")
    expect(form.locator("textarea")).to_be_focused()
    page.keyboard.type("Review booked for Monday")
    audit("workspace with a completion note open")
    page.keyboard.press("Tab")
    expect(form.get_by_role("button", name="Save")).to_be_focused()
    page.keyboard.press("Enter")
    expect(action).to_contain_text("Marked done by")
    expect(action.locator("article")).to_be_focused()

    member = page.locator(f"[data-tac-member='{gp.user.public_id}']")
    member.get_by_role("button", name=f"Remove {gp.user.full_name}", exact=True).focus()
    page.keyboard.press("Enter")
    expect(member.locator("[data-tac-confirm] .govuk-warning-text__text")).to_be_focused()
    audit("workspace with a removal to confirm")
    audit.assert_clean(2)


def test_it_says_the_session_ended_for_inactivity_instead_of_live(new_page, lead, team):
    from tests.browser.test_idle_sign_out import IDLE_SECONDS, shorten_idle_limit

    workspace, *_ = team
    page = new_page()
    open_workspace(page, lead, workspace)
    shorten_idle_limit(page, IDLE_SECONDS)
    page.reload()
    line = page.locator("[data-tac-connection]")
    expect(line).to_have_text("Live: new posts appear here as they are made.")
    expect(line).to_contain_text("You have been signed out because you were inactive", timeout=IDLE_SECONDS * 2000)
    expect(line).not_to_contain_text("Live")
    expect(page.locator("form[data-tac-composer]")).to_be_hidden()


def test_it_caps_the_childs_details_when_opening_a_workspace(page, lead, custodian):
    sign_in(page, lead)
    page.goto("/workspaces/new/")
    page.locator("#child-name").fill("Robin Example")
    page.locator("#child-notes").fill("n" * 20_001)
    expect(page.locator("#child-notes-info")).to_contain_text("20000 characters")
    page.get_by_role("button", name="Open workspace").click()
    expect(page.locator("[data-tac-error-summary]")).to_contain_text("Notes must be 20,000 characters or fewer")
    assert not Post.objects.exists()


def test_it_moves_focus_to_what_an_invitation_did(new_page, lead, outsider, team):
    workspace, *_ = team
    page = new_page()
    open_workspace(page, lead, workspace)
    page.locator("#invite-search").fill(outsider.user.full_name[:4])
    page.locator("form[data-tac-invite]").get_by_role("button", name="Search").click()
    page.get_by_role("button", name=f"Invite {outsider.user.full_name}").click()
    done = page.locator(f"[data-tac-invited='{outsider.user.public_id}']")
    expect(done).to_contain_text(f"{outsider.user.full_name} is invited")
    expect(done).to_be_focused()
    assert Membership.objects.get(workspace=workspace, professional=outsider.user).state == Membership.State.INVITED
