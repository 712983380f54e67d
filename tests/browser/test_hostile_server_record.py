"""Issue 8, items 9-16: the operator of the server edits rows (through the ORM, here in the test process)
and rewrites API answers (Playwright's page.route) while the shipped JavaScript stays as it is. Each test
performs one attack and ends with it refused and a clear warning on the page (docs/crypto.md, "What a
reader believes"); the last ones walk the honest path for sharing the earlier record.

The team is made through the services before any page loads (their events are captured, not sent: the
event loop belongs to Playwright in this thread). Sam Lead leads, Dr Priya GP and Morgan Manager are
members; the workspace has two key epochs, the second admitting the GP and the manager."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import time
import uuid
from dataclasses import dataclass

import pytest
from django.db import connection, transaction
from django.utils import timezone
from playwright.sync_api import Page, Route, expect

from accounts.models import IdentityKey
from audit.models import AuditEvent
from messaging import services
from messaging.models import Epoch, Membership, Post, Workspace
from messaging.schemas import EpochBundle
from messaging.services import checks
from tacprotocol import crypto
from tacprotocol.workspace import epoch_bundle, seal_post
from tests.browser.journeys import expected_safety_number, sign_in
from tests.browser.test_workspace_flow import pg_dump
from tests.messaging.factories import Client, join, member_key, newest

pytestmark = pytest.mark.browser

CHILD = "Robin Hartley-Mensah"
OTHER_CHILD = "Ava Penhaligon"
OTHER_THREAD = "Ava's nursery says she has been absent all week"
WARNINGS = "[data-tac-warnings] .tac-warning-line"
RED = "rgb(212, 53, 28)"  # tac.css: .tac-post__problem


@dataclass
class Team:
    workspace: Workspace
    lead: Client
    gp: Client
    manager: Client


@pytest.fixture(autouse=True)
def server_done(transactional_db):
    """After the pages close (new_page is torn down first), wait until the server has finished what they
    last asked of it: the database flush that ends the test would otherwise deadlock with a request still
    in its transaction (a saved state, a read position)."""
    yield
    quiet = 0
    with connection.cursor() as cursor:
        for _ in range(100):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')")
            quiet = quiet + 1 if cursor.fetchone()[0] == 0 else 0
            if quiet == 3:
                return
            time.sleep(0.05)


def details_body(workspace: Workspace, name: str = CHILD) -> dict:
    return {"name": name, "workspace": str(workspace.public_id), "reference": workspace.reference}


@pytest.fixture
def team(lead, gp, manager, custodian, capture_events) -> Team:
    lead_client, gp_client, manager_client = Client(lead, custodian), Client(gp, custodian), Client(manager, custodian)
    workspace = lead_client.create_workspace({"name": CHILD})
    join(lead_client, workspace, gp_client, manager_client)
    # As the lead's browser does after a new epoch: the child's details carried into it.
    lead_client.post(workspace, "details", details_body(workspace))
    return Team(workspace, lead_client, gp_client, manager_client)


# --- what a hostile server does ------------------------------------------------------------------------


def insert_post(workspace: Workspace, payload: dict) -> Post:
    """Store a sealed post the way a hostile server would: straight into the table as the next number,
    with none of post_create's checks (who may change what, whose key it is)."""
    raw = {k: base64.b64decode(payload[k]) for k in ("header", "nonce", "ciphertext", "signature")}
    h = crypto.PostHeader.from_bytes(raw["header"])
    workspace.refresh_from_db()
    author = Membership.objects.get(workspace=workspace, professional__public_id=h.author_id,
                                    state="active").professional
    key = next(k for k in author.identity_keys.all()
               if crypto.fingerprint(bytes(k.sign_public), bytes(k.box_public)) == h.author_fingerprint)
    seq = workspace.last_seq + 1
    post = Post.objects.create(
        workspace=workspace, seq=seq, post_id=h.post_id, author=author, author_key=key,
        epoch=Epoch.objects.get(workspace=workspace, number=h.epoch), kind=h.kind, rag=h.rag, status=h.status,
        target=Post.objects.filter(post_id=h.target_id).first(),
        client_time=dt.datetime.fromtimestamp(h.client_time_ms / 1000, tz=dt.UTC), **raw)
    Workspace.objects.filter(pk=workspace.pk).update(last_seq=seq)
    return post


def rewrite_json(page: Page, matches, change) -> None:
    """Answer every request whose URL `matches` with the server's JSON after `change(data, url)`."""
    def handle(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, json=change(response.json(), route.request.url))

    page.route(matches, handle)


def signed_iso(post: Post) -> str:
    """The post's signed client time as the page writes it in <time datetime>: JavaScript's toISOString."""
    ms = crypto.PostHeader.from_bytes(bytes(post.header)).client_time_ms
    return dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def open_thread(page: Page, persona, workspace: Workspace) -> None:
    sign_in(page, persona)
    page.goto(f"/workspaces/{workspace.public_id}/")


def post_node(page: Page, post: Post):
    return page.locator(f"#post-{post.post_id}")


def warning_line(page: Page, text: str):
    return page.locator(WARNINGS, has_text=text)


def action_with_status(team: Team, *statuses: str, acknowledged_by: Client | None = None) -> tuple[Post, list[Post]]:
    """An action the lead gives the GP, optionally acknowledged, then the GP's status changes in order."""
    ws = team.workspace
    action = team.lead.post(ws, "action", {"title": "Arrange a child protection medical", "detail": ""},
                            owner=team.gp.user.public_id, status="open").post
    changes = []
    if acknowledged_by is not None:
        changes.append(acknowledged_by.post(ws, "acknowledgement", {}, target=action.post_id).post)
    notes = {"done": "Medical done at Riverside", "reopened": "The report is still missing", "cancelled": "Not needed"}
    for status in statuses:
        changes.append(team.gp.post(ws, "action_status", {"note": notes[status]}, target=action.post_id,
                                    status=status).post)
    return action, changes


# --- 9. order and completeness -------------------------------------------------------------------------


def test_it_applies_action_status_in_signed_order_when_the_server_swaps_numbers(page, lead, team):
    """Attack: the server swaps the numbers of an action's "done" and the later "reopened" (in one
    transaction, through a temporary number), so that served in order the action ends "done".
    Rule: status is applied in signed causal order (each header names the post its author had seen), and
    a post that follows one numbered after it is flagged: the order was changed."""
    action, (done, reopened) = action_with_status(team, "done", "reopened")
    with transaction.atomic():
        Post.objects.filter(pk=done.pk).update(seq=10**9)
        Post.objects.filter(pk=reopened.pk).update(seq=done.seq)
        Post.objects.filter(pk=done.pk).update(seq=reopened.seq)

    open_thread(page, lead, team.workspace)
    node = post_node(page, action)
    expect(node.locator("[data-action-meta]")).to_contain_text("Status: reopened")
    expect(node.locator("[data-events] li")).to_have_text([
        re.compile(r"^Marked done by Dr Priya GP: Medical done at Riverside"),
        re.compile(r"^Reopened by Dr Priya GP: The report is still missing"),
    ])
    expect(node.locator("[data-notes] li")).to_contain_text([
        # The reopening, now served as #done.seq, names the "done" (originally that number) as the post before it.
        re.compile(rf"^Warning: #{done.seq}: Its author wrote it after #{done.seq}, which the server numbered "
                   r"after it: the order was changed"),
    ])


def test_it_shows_where_the_server_deleted_a_reopen_and_an_acknowledgement(page, manager, team):
    """Attack: the server deletes the lead's acknowledgement of a concern and the GP's reopening of an
    action, so the action shows "done" and the concern looks unread, with no trace.
    Rule: a number missing between two posts is shown when this reader holds the keys it would be in, and
    a post whose signed header follows a post the server has not shown is flagged as following a deleted one."""
    ws = team.workspace
    concern = team.gp.post(ws, "concern", {"category": "neglect", "detail": "No food in the house"}, rag="amber").post
    ack = team.lead.post(ws, "acknowledgement", {}, target=concern.post_id).post
    action, (done, reopened) = action_with_status(team, "done", "reopened")
    update = team.manager.post(ws, "update", {"text": "School says Robin was hungry again"}).post
    Post.objects.filter(pk__in=[ack.pk, reopened.pk]).delete()

    open_thread(page, manager, ws)
    expect(warning_line(page, f"Posts #{ack.seq} are missing")).to_be_visible()
    expect(warning_line(page, f"Posts #{reopened.seq} are missing")).to_be_visible()
    expect(post_node(page, action).locator("[data-notes]")).to_contain_text(
        f"Warning: Its author wrote it after #{ack.seq}, which the server has not shown: a post may have been deleted")
    expect(post_node(page, update).locator("[data-notes]")).to_contain_text(
        f"Warning: Its author wrote it after #{reopened.seq}, which the server has not shown: a post may have been "
        "deleted")
    expect(post_node(page, concern).locator("[data-events] li")).to_have_count(0)


def test_it_flags_posts_renumbered_to_hide_a_deletion(page, manager, team):
    """Attack: as above, but the server also renumbers every later post down so that no number is missing.
    Rule: each signed header names the number and hash of the post its author had seen; a post that follows
    one the server numbered after it (or whose number now belongs to another post) is flagged."""
    ws = team.workspace
    action, (done, reopened) = action_with_status(team, "done", "reopened")
    update = team.manager.post(ws, "update", {"text": "Written after the reopening"}).post
    with transaction.atomic():
        Post.objects.filter(pk=reopened.pk).delete()
        Post.objects.filter(pk=update.pk).update(seq=reopened.seq)
        Workspace.objects.filter(pk=ws.pk).update(last_seq=reopened.seq)

    open_thread(page, manager, ws)
    node = post_node(page, update)
    expect(node.locator("[data-seq]")).to_have_text(str(reopened.seq))
    expect(node.locator("[data-notes]")).to_contain_text(
        f"Warning: Its author wrote it after #{reopened.seq}, which the server numbered after it: the order was "
        "changed")


def test_it_shows_a_replayed_acknowledgement_and_status_once(page, lead, team):
    """Attack: the server serves an old acknowledgement and an old "done" again under new numbers after the
    action was reopened (a copied Post row cannot be stored: post ids are unique, so the answer is
    rewritten), to show "Read and accepted" twice and flip the status back to done.
    Rule: the same post id again is a replay: shown once, flagged, never applied a second time."""
    action, (ack, done, reopened) = action_with_status(team, "done", "reopened", acknowledged_by=team.manager)
    last = reopened.seq

    def replay(data, url):
        if "after=0" in url and "kind=" not in url:
            served = {p["post_id"]: p for p in data["posts"]}
            data["posts"] += [{**served[str(ack.post_id)], "seq": last + 1},
                              {**served[str(done.post_id)], "seq": last + 2}]
        return data

    rewrite_json(page, re.compile(r"/api/v1/workspaces/[^/]+/posts\?"), replay)
    open_thread(page, lead, team.workspace)
    expect(warning_line(page, f"The server sent post #{ack.seq} again as #{last + 1}: it is shown once.")).to_be_visible()
    expect(warning_line(page, f"The server sent post #{done.seq} again as #{last + 2}: it is shown once.")).to_be_visible()
    node = post_node(page, action)
    expect(node.locator("[data-events] li", has_text="Read and accepted by Morgan Manager")).to_have_count(1)
    expect(node.locator("[data-events] li", has_text="Marked done by")).to_have_count(1)
    expect(node.locator("[data-action-meta]")).to_contain_text("Status: reopened")
    # The original is shown on the action, so the copy is the one item under the post's id.
    copy = post_node(page, done)
    expect(copy.locator("[data-seq]")).to_have_text(str(last + 2))
    expect(copy).to_have_class(re.compile(r"\btac-post--refused\b"))
    expect(copy.locator("[data-problem]")).to_have_text(f"Refused: a replayed copy of #{done.seq}")


# --- 10. changes by the wrong person ---------------------------------------------------------------------


def test_it_ignores_an_edit_retraction_and_status_by_the_wrong_person(page, lead, team):
    """Attack: the server stores (bypassing its own checks) an edit and a retraction of Sam's update signed
    with the GP's key, and a "done" for the GP's action signed by the manager, who neither owns it nor leads.
    Rule: an edit or retraction counts only if signed by the target's author; a status only if signed by the
    action's owner or the lead of its epoch. Anything else is shown as ignored, never applied."""
    ws = team.workspace
    update = team.lead.post(ws, "update", {"text": "Sam's own words about the home visit"}).post
    action, _ = action_with_status(team)
    insert_post(ws, team.gp.seal(ws, "edit", {"text": "Words Sam never wrote"}, target=update.post_id))
    insert_post(ws, team.gp.seal(ws, "retraction", {"reason": "Sam did not retract this"}, target=update.post_id))
    insert_post(ws, team.manager.seal(ws, "action_status", {"note": "Closed by the wrong person"},
                                      target=action.post_id, status="done"))

    open_thread(page, lead, ws)
    node = post_node(page, update)
    expect(node.locator("[data-text]")).to_have_text("Sam's own words about the home visit")
    expect(node).not_to_have_class(re.compile(r"\btac-post--retracted\b"))
    expect(node.locator("[data-events] li")).to_have_count(0)
    expect(node.locator("[data-notes]")).to_contain_text(
        "Warning: An edit signed by Dr Priya GP, who did not write this post, was ignored")
    expect(node.locator("[data-notes]")).to_contain_text(
        "Warning: A retraction signed by Dr Priya GP, who did not write this post, was ignored")
    meta = post_node(page, action).locator("[data-action-meta]")
    expect(meta).to_contain_text("Status: open")
    expect(post_node(page, action).locator("[data-notes]")).to_contain_text(
        "Warning: A status change signed by Morgan Manager, who neither owns this action nor leads the workspace, "
        "was ignored")
    expect(post_node(page, action).locator("[data-events] li")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text("Words Sam never wrote")
    expect(page.locator("body")).not_to_contain_text("Closed by the wrong person")


# --- 11. a post forged as Priya ----------------------------------------------------------------------------


def test_it_refuses_a_post_forged_as_priya_in_everyone_s_view_including_hers(new_page, lead, gp, team):
    """Attack: the server adds an identity key of its own for the GP (a valid self-signed binding) and
    stores a red sexual-abuse concern "by her" signed with it, sealed under the real epoch key (as if it
    had obtained one), and raises its summary to red.
    Rule: a post whose signing key the verified manifest (or a confirmation) does not give its author is
    refused: shown in red as not anyone's, not counted on home, in every reader's view and in the author's."""
    ws = team.workspace
    team.gp.post(ws, "concern", {"category": "neglect", "detail": "Genuine concern from Priya"}, rag="amber")
    forger = crypto.Identity.generate()
    IdentityKey.objects.create(
        professional=gp.user, version=gp.user.identity_keys.count() + 1, sign_public=forger.sign_public,
        box_public=forger.box_public, binding_signature=forger.binding_signature(gp.user.public_id),
        wrapped_secret=os.urandom(104), replaced_at=timezone.now())
    epoch = ws.current_epoch
    forged = insert_post(ws, seal_post(
        identity=forger, author_id=gp.user.public_id, workspace_id=ws.public_id, epoch=epoch,
        epoch_key=team.lead.keys(ws).epoch_keys[epoch], kind="concern", rag="red",
        body={"category": "sexual_abuse", "detail": "A forged disclosure"}, prev=newest(ws)))
    Workspace.objects.filter(pk=ws.pk).update(current_rag="red")

    for persona in (lead, gp):
        page = new_page()
        open_thread(page, persona, ws)
        node = post_node(page, forged)
        expect(node).to_have_class(re.compile(r"\btac-post--refused\b"))
        problem = node.locator("[data-problem]")
        expect(problem).to_have_text("Refused: it is signed with a key that is not its author's verified key: "
                                     "it is not shown as theirs")
        expect(problem).to_have_css("color", RED)
        expect(node.locator("[data-author]")).to_have_text("Not verified")
        expect(node).not_to_contain_text("Dr Priya GP")
        expect(node).not_to_contain_text("Sexual abuse")
        expect(node.locator(".govuk-tag--red")).to_have_count(0)
        expect(page.locator("body")).not_to_contain_text("A forged disclosure")
        expect(page.locator(".tac-post", has_text="Genuine concern from Priya")).to_contain_text("Dr Priya GP")

        page.goto("/")
        rag = page.locator(f"[data-tac-workspace-row='{ws.public_id}'] [data-tac-rag]")
        expect(rag.locator("[data-tac-rag-verified]")).to_have_text("Amber (verified from 1 signed concern)")
        expect(rag.locator("[data-tac-rag-note]")).to_have_text(
            "The server's summary says Red: it does not match the signed posts.")


# --- 12. times ------------------------------------------------------------------------------------------------


def test_it_shows_the_signed_time_when_the_server_changes_created_at(page, lead, team):
    """Attack: the server moves two posts' times (created_at) to 5 Jan 2026 and 1 Jun 2027.
    Rule: a post shows its signed client time; a server time more than 10 minutes from it is flagged."""
    ws = team.workspace
    first = team.gp.post(ws, "update", {"text": "Seen at the surgery today"}).post
    second = team.manager.post(ws, "update", {"text": "Strategy meeting booked"}).post
    moved = {first: dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC), second: dt.datetime(2027, 6, 1, 12, tzinfo=dt.UTC)}
    for post, when in moved.items():
        Post.objects.filter(pk=post.pk).update(created_at=when)

    open_thread(page, lead, ws)
    for post, when in moved.items():
        node = post_node(page, post)
        expect(node.locator("[data-time]")).to_have_attribute("datetime", signed_iso(post))
        expect(node.locator("[data-time]")).not_to_contain_text(when.strftime("%-d %b %Y"))
        # In the browser's own time zone: the hour may not be 12.
        expect(node.locator("[data-notes]")).to_contain_text(re.compile(
            rf"Warning: The server's time for this post \({when.strftime('%d/%m/%Y')}, \d\d:00:00\) differs from its "
            "signed time"))


# --- 13. unverified summaries ----------------------------------------------------------------------------------


def test_it_shows_the_verified_highest_concern_on_home_not_the_server_s(page, lead, team):
    """Attack: the server sets the workspace's current_rag to green while it holds a red concern.
    Rule: home shows the highest concern from posts this browser verified, and flags a server summary that
    differs."""
    ws = team.workspace
    team.gp.post(ws, "concern", {"category": "physical_abuse", "detail": "Bruising seen"}, rag="red")
    Workspace.objects.filter(pk=ws.pk).update(current_rag="green")

    sign_in(page, lead)
    rag = page.locator(f"[data-tac-workspace-row='{ws.public_id}'] [data-tac-rag]")
    expect(rag.locator("[data-tac-rag-verified]")).to_have_text("Red (verified from 1 signed concern)")
    expect(rag.locator("[data-tac-rag-note]")).to_have_text(
        "The server's summary says Green: it does not match the signed posts.")
    expect(rag).not_to_contain_text("Green (verified")


@pytest.fixture
def two_workspaces(lead, custodian, capture_events) -> tuple[Workspace, Workspace]:
    client = Client(lead, custodian)
    a, b = client.create_workspace({"name": CHILD}), client.create_workspace({"name": OTHER_CHILD})
    client.post(b, "update", {"text": OTHER_THREAD})
    return a, b


def test_it_refuses_another_workspace_s_answer_and_never_shows_its_child(new_page, lead, two_workspaces):
    """Attack: asked for workspace A, the server answers with workspace B's record and posts (B is also the
    lead's), so A's reference would head B's child and thread.
    Rule: every answer must be for what was asked: the workspace detail's id is checked against the id in
    the page, and a record that fails is not shown at all, on the workspace page and on home."""
    a, b = two_workspaces

    def b_instead(route: Route) -> None:
        route.fulfill(response=(response := route.fetch(url=route.request.url.replace(str(a.public_id), str(b.public_id)))),
                      json=response.json())

    page = new_page()
    page.route(re.compile(rf"/api/v1/workspaces/{a.public_id}(/posts\?.*)?$"), b_instead)
    open_thread(page, lead, a)
    expect(warning_line(page, "This workspace's record could not be verified, so nothing from it is shown: the "
                              f"server answered with another workspace than the one asked for ({a.public_id})")
           ).to_be_visible()
    expect(page.locator("[data-tac-stopped]")).to_be_visible()
    expect(page.locator("form[data-tac-composer]")).to_be_hidden()
    expect(page.locator(".tac-post")).to_have_count(0)
    expect(page.locator("body")).to_contain_text(a.reference)
    expect(page.locator("body")).not_to_contain_text(OTHER_CHILD)
    expect(page.locator("body")).not_to_contain_text(OTHER_THREAD)

    page.goto("/")
    row = page.locator(f"[data-tac-workspace-row='{a.public_id}']")
    expect(row.locator("[data-tac-rag-note]")).to_have_text(
        f"Not verified: the server answered with another workspace than the one asked for ({a.public_id})")
    expect(row.locator("[data-tac-child-name]")).not_to_contain_text(OTHER_CHILD)
    # B's own row is B's, as it should be.
    expect(page.locator(f"[data-tac-workspace-row='{b.public_id}'] [data-tac-child-name]")).to_have_text(
        f" {OTHER_CHILD}")


def test_it_refuses_another_workspace_s_details_post(page, lead, two_workspaces):
    """Attack: the server moves workspace B's child's details post into workspace A (A's epoch, the next
    number), so A's page would head B's child.
    Rule: a post's signed header names its workspace; a post for another workspace is refused."""
    a, b = two_workspaces
    moved = Post.objects.get(workspace=b, kind="details")
    a.refresh_from_db()
    Post.objects.filter(pk=moved.pk).update(workspace=a, epoch=Epoch.objects.get(workspace=a, number=1),
                                            seq=a.last_seq + 1)
    Workspace.objects.filter(pk=a.pk).update(last_seq=a.last_seq + 1)

    open_thread(page, lead, a)
    node = post_node(page, moved)
    expect(node).to_have_class(re.compile(r"\btac-post--refused\b"))
    expect(node.locator("[data-problem]")).to_have_text("Refused: this post belongs to another workspace or id")
    expect(page.locator("[data-tac-child-heading]")).to_have_text(CHILD)
    expect(page.locator("body")).not_to_contain_text(OTHER_CHILD)


def test_it_refuses_details_that_name_another_reference(page, lead, two_workspaces):
    """Attack: the server swaps the two workspaces' references, so A's child is shown under B's reference
    (and B's under A's).
    Rule: the child's details body names its workspace and reference; details that do not name the
    reference the page shows are refused, and the page is not headed with them."""
    a, b = two_workspaces
    with transaction.atomic():
        Workspace.objects.filter(pk=a.pk).update(reference="TAC-SWAP")
        Workspace.objects.filter(pk=b.pk).update(reference=a.reference)
        Workspace.objects.filter(pk=a.pk).update(reference=b.reference)

    open_thread(page, lead, a)
    node = post_node(page, Post.objects.get(workspace=a, kind="details"))
    expect(node).to_have_class(re.compile(r"\btac-post--refused\b"))
    expect(node.locator("[data-problem]")).to_have_text(
        f"Refused: these details are for another workspace than {b.reference}")
    expect(page.locator("[data-tac-child-heading]")).to_have_text("Team around the child")
    expect(page.locator("body")).not_to_contain_text(CHILD)


# --- 14. the team list -------------------------------------------------------------------------------------


def test_it_marks_a_server_only_member_as_outside_the_signed_membership(page, lead, outsider, team):
    """Attack: the server adds an active membership for the outsider, whom no manifest lists, so the team
    list would show them as a member with a safety number.
    Rule: the team list is the verified manifest's members; anyone else the server calls active is marked:
    nothing is encrypted for them."""
    Membership.objects.create(workspace=team.workspace, professional=outsider.user, role="member", state="active",
                              joined_at=timezone.now(), first_epoch=team.workspace.current_epoch)
    sentence = ("The server lists Olly Outsider as a member, but the signed membership does not: nothing is "
                "encrypted for them.")

    open_thread(page, lead, team.workspace)
    item = page.locator(f"[data-tac-members] li[data-tac-member='{outsider.user.public_id}']")
    expect(item).to_contain_text(sentence)
    expect(item).not_to_contain_text("Safety number")
    expect(item.locator("[data-tac-safety]")).to_have_count(0)
    expect(warning_line(page, sentence)).to_be_visible()
    expect(page.locator("[data-tac-members] li[data-tac-member]")).to_have_count(4)


def test_it_keeps_a_member_the_server_hides_in_the_team_list(page, lead, gp, team):
    """Attack: the server drops the GP from the workspace answer's members, so the team list would lose her.
    Rule: the team list comes from the verified manifest: she is still listed with the safety number the
    manifest gives her, and marked as not shown by the server."""
    gp_id = str(gp.user.public_id)

    def hide_gp(data, url):
        data["members"] = [m for m in data.get("members", []) if m["id"] != gp_id]
        return data

    rewrite_json(page, re.compile(rf"/api/v1/workspaces/{team.workspace.public_id}$"), hide_gp)
    open_thread(page, lead, team.workspace)
    item = page.locator(f"[data-tac-members] li[data-tac-member='{gp_id}']")
    expect(item).to_contain_text("The server no longer shows this member.")
    expect(item.locator(f"[data-tac-safety='{gp_id}']")).to_have_text(expected_safety_number(gp.user))
    expect(page.locator("[data-tac-members] li[data-tac-member]")).to_have_count(3)
    # Nothing moves the keys because of it: the server only said less.
    page.wait_for_timeout(2000)
    assert Epoch.objects.filter(workspace=team.workspace).count() == 2


# --- 15. lengths -----------------------------------------------------------------------------------------------


def test_it_pads_what_the_browser_encrypts(page, lead, custodian):
    """Attack (passive): the server reads ciphertext lengths to learn how long each post and each child's
    details are. Rule: bodies are padded before encryption, posts to 256-byte steps and the child's details
    to 16 KiB steps, so a length tells only a bucket."""
    sign_in(page, lead)
    for name, longer in (("Kai Short", ""), ("Kai Long-Enough-To-Differ", "Lives with mum and two siblings. " * 90)):
        page.goto("/")
        page.get_by_role("link", name="Open a workspace for a child").click()
        page.wait_for_load_state("networkidle")  # the form's module is loaded: a click before it would submit the form
        page.get_by_label("Child's full name").fill(name)
        page.get_by_label("Address").fill(longer)
        page.get_by_role("button", name="Open workspace").click()
        expect(page.get_by_role("heading", name=name)).to_be_visible()
    for text in ("Short", "A little longer update " * 4, "A much longer update, past one block " * 9):
        page.get_by_role("radio", name="Update").check()
        page.locator("#post-text").fill(text.strip())
        page.get_by_role("button", name="Post", exact=True).click()
        expect(page.locator(".tac-post", has_text=text.strip())).to_be_visible()

    details = list(Post.objects.filter(kind="details").order_by("pk"))
    updates = list(Post.objects.filter(kind="update").order_by("seq"))
    assert len(details) == 2 and len(updates) == 3
    for post in details:
        assert (len(post.ciphertext) - 16) % crypto.DETAILS_PAD_BLOCK == 0
    assert len(details[0].ciphertext) == len(details[1].ciphertext)
    for post in updates:
        assert (len(post.ciphertext) - 16) % crypto.POST_PAD_BLOCK == 0
    assert [len(p.ciphertext) - 16 for p in updates] == [256, 256, 512]


# --- 16. the honest path for the earlier record ------------------------------------------------------------

OLD = "Health visitor's note from the first month"
RECENT = "Nursery's note from last week"
REASON = "Priya holds the health record and needs the history"


@pytest.fixture
def earlier_record(lead, gp, custodian, capture_events, monkeypatch) -> Workspace:
    """A workspace the lead kept alone for a while: key epoch 1 from 60 days ago with an update, epoch 2
    from 25 days ago with another; then the GP is invited and accepts. Time is moved for the server's clock
    checks in this process, and the stored server times are those an honest server would have written."""
    client = Client(lead, custodian)
    now = int(timezone.now().timestamp() * 1000)
    t1, t2 = now - 60 * 86_400_000, now - 25 * 86_400_000
    with monkeypatch.context() as clock:  # not monkeypatch.undo(): that would undo capture_events too
        clock.setattr(checks, "now_ms", lambda: t1)
        body = client.workspace_payload(created_ms=t1)
        ws = services.workspace_create(lead=lead.user, workspace_id=uuid.UUID(body["id"]),
                                       epoch=EpochBundle.parse(body["epoch"]))
        client.post(ws, "details", details_body(ws), client_time_ms=t1)
        client.post(ws, "update", {"text": OLD}, client_time_ms=t1 + 1000)
        clock.setattr(checks, "now_ms", lambda: t2)
        bundle, _ = epoch_bundle(lead=client.identity, workspace_id=ws.public_id, epoch=2,
                                 prev_manifest_hash=client.keys(ws).manifest_hashes[1],
                                 members=[member_key(lead.user, "lead")], custodian=client.custodian_key, created_ms=t2)
        services.epoch_rotate(lead=lead.user, workspace=ws, epoch=EpochBundle.parse(bundle))
        client.post(ws, "details", details_body(ws), client_time_ms=t2)
        client.post(ws, "update", {"text": RECENT}, client_time_ms=t2 + 1000)
    for post in Post.objects.filter(workspace=ws):
        Post.objects.filter(pk=post.pk).update(created_at=post.client_time)
    for epoch, ms in ((1, t1), (2, t2)):
        Epoch.objects.filter(workspace=ws, number=epoch).update(
            created_at=dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC))
    client.invite(ws, gp.user)
    services.membership_respond(professional=gp.user, workspace=ws, accept=True)
    ws.refresh_from_db()
    return ws


def admit_gp(page: Page, lead, gp, ws: Workspace, choice: str, *, since: str = "", reason: str = "") -> None:
    """The lead compares the GP's safety number, answers the history question and presses Admit."""
    open_thread(page, lead, ws)
    item = page.locator(f"[data-tac-member='{gp.user.public_id}']")
    expect(item).to_contain_text(expected_safety_number(gp.user))
    item.get_by_role("radio", name=choice).check()
    if since:
        item.get_by_label("From (if from a date)").fill(since)
    if reason:
        item.get_by_label("Why they need the earlier record").fill(reason)
    item.get_by_role("button", name=f"Admit {gp.user.full_name}").click()
    expect(page.locator(f"[data-tac-safety='{gp.user.public_id}']")).to_be_visible()


def gp_thread(new_page, gp, ws: Workspace) -> Page:
    page = new_page()
    open_thread(page, gp, ws)
    expect(page.get_by_role("heading", name=CHILD)).to_be_visible()
    return page


def assert_reason_only_in_ciphertext(reason: str) -> None:
    assert reason.encode() not in pg_dump()
    audit = json.dumps([e.data for e in AuditEvent.objects.all()] + [e.actor_label for e in AuditEvent.objects.all()])
    assert reason not in audit


def test_it_shares_all_of_the_earlier_record_when_the_lead_says_so(new_page, lead, gp, earlier_record):
    """Honest path: admitting the GP, the lead keeps "Yes, all of it" (the default) and gives a reason. The
    GP reads every earlier post; the reason is in a signed "Earlier record shared" post, encrypted (not in a
    database dump or the audit data); the audit trail records the grant."""
    ws = earlier_record
    lead_page = new_page()
    admit_gp(lead_page, lead, gp, ws, "Yes, all of it", reason=REASON)
    shared = lead_page.locator(".tac-post", has_text="shared the earlier record")
    expect(shared).to_contain_text(f"Sam Lead shared the earlier record with Dr Priya GP: {REASON}")
    expect(shared.locator("[data-kind]")).to_have_text("Earlier record shared")

    page = gp_thread(new_page, gp, ws)
    expect(page.locator(".tac-post", has_text=OLD)).to_be_visible()
    expect(page.locator(".tac-post", has_text=RECENT)).to_be_visible()
    expect(page.locator(".tac-post", has_text=REASON)).to_contain_text("Sam Lead")
    expect(page.locator("[data-tac-warnings]")).to_be_hidden()

    event = AuditEvent.objects.get(kind="membership.history_shared")
    assert event.data == {"member": str(gp.user.public_id), "epochs": [1, 2]}
    assert Post.objects.filter(workspace=ws, kind="history_shared").count() == 1
    assert_reason_only_in_ciphertext(REASON)


def test_it_shares_the_earlier_record_from_a_date(new_page, lead, gp, earlier_record):
    """Honest path: "Yes, from a date" shares only the key epochs still current on or after that date (by
    the manifests' signed times): the GP reads the recent post, not the one from before the date."""
    ws = earlier_record
    since = (timezone.now() - dt.timedelta(days=20)).date().isoformat()
    lead_page = new_page()
    admit_gp(lead_page, lead, gp, ws, "Yes, from a date", since=since, reason=REASON)
    expect(lead_page.locator(".tac-post", has_text="shared the earlier record")).to_contain_text(
        f"Sam Lead shared the earlier record from {since} with Dr Priya GP: {REASON}")

    page = gp_thread(new_page, gp, ws)
    expect(page.locator(".tac-post", has_text=RECENT)).to_be_visible()
    expect(page.locator(".tac-post", has_text=REASON)).to_be_visible()
    expect(page.locator(".tac-post", has_text=OLD)).to_have_count(0)
    expect(page.locator("[data-tac-warnings]")).to_be_hidden()
    assert AuditEvent.objects.get(kind="membership.history_shared").data["epochs"] == [2]
    assert_reason_only_in_ciphertext(REASON)


def test_it_shares_nothing_earlier_until_the_lead_shares_it_later(new_page, lead, gp, earlier_record):
    """Honest path: "No" admits the GP to new posts only; later the lead shares the earlier record from the
    "Share the earlier record with <name>" control on the team list, and the GP then reads it."""
    ws = earlier_record
    lead_page = new_page()
    admit_gp(lead_page, lead, gp, ws, "No")
    later = lead_page.locator(f"[data-tac-member='{gp.user.public_id}'] details",
                              has_text="Share the earlier record with Dr Priya GP")
    expect(later).to_be_visible()
    assert not AuditEvent.objects.filter(kind="membership.history_shared").exists()

    page = gp_thread(new_page, gp, ws)
    expect(page.locator(".tac-post", has_text="The child's details")).not_to_have_count(0)
    expect(page.locator(".tac-post", has_text=OLD)).to_have_count(0)
    expect(page.locator(".tac-post", has_text=RECENT)).to_have_count(0)

    later.locator("summary").click()
    later.get_by_role("radio", name="Yes, all of it").check()
    later.get_by_label("Why they need the earlier record").fill(REASON)
    later.get_by_role("button", name="Share", exact=True).click()
    expect(lead_page.locator(".tac-post", has_text="shared the earlier record")).to_contain_text(REASON)
    expect(later).to_have_count(0)

    page.reload()
    expect(page.locator(".tac-post", has_text=OLD)).to_be_visible()
    expect(page.locator(".tac-post", has_text=RECENT)).to_be_visible()
    assert AuditEvent.objects.get(kind="membership.history_shared").data["epochs"] == [1, 2]
    assert_reason_only_in_ciphertext(REASON)
