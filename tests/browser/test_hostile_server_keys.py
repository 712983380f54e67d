"""Issue 8, items 1-8, in Chromium: the test is whoever runs the server. It edits rows through the ORM
and rewrites API answers with page.route, while the shipped JavaScript stays as it is. Every attack
ends refused with a clear warning on screen, and each test asserts what a successful attack would
have left behind (a wrap for the attacker's key, an epoch that admits them, a post the attacker can
read, a forged post shown as someone's). The rules are docs/crypto.md's "What a reader believes".

The team is made through the services in the test process, as in test_thread_warnings.py; events of
anything done here are captured, not sent, so pages are (re)loaded after each change."""

from __future__ import annotations

import base64
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db.models import F, Max
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import IdentityKey, Professional
from messaging import services
from messaging.models import (
    ClientState,
    CustodianKey,
    Epoch,
    EpochWrap,
    KeyConfirmation,
    Membership,
    Post,
    Workspace,
)
from tacprotocol import crypto
from tacprotocol.workspace import seal_post
from tests.browser.journeys import allow_totp_reuse, expected_safety_number, sign_in
from tests.messaging.factories import Client, member_key, newest, password_reset

pytestmark = pytest.mark.browser

CHILD = "Robin Example"
EARLIER = "Referral received from the school nurse"  # epoch 1, before the GP joined: shared as history
CONCERN = "Bruising seen at nursery drop-off"
UPDATE = "Home visit arranged for Thursday"

WARNINGS = "[data-tac-warning-text]"
COMPOSER = "form[data-tac-composer]"
ERRORS = "[data-tac-error-summary]"


@dataclass
class Team:
    workspace: Workspace
    lead: Client
    gp: Client


@pytest.fixture
def team(lead, gp, custodian, capture_events) -> Team:
    """Sam leads; Dr Priya GP joined in epoch 2 and was given epoch 1 as history. Posts: #1 the child's
    details and #2 an update (epoch 1), #3 the GP's concern and #4 the lead's update (epoch 2)."""
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": CHILD})
    lead_client.post(workspace, "update", {"text": EARLIER})
    lead_client.invite(workspace, gp.user)
    services.membership_respond(professional=gp.user, workspace=workspace, accept=True)
    lead_client.rotate(workspace)
    lead_client.share_history(workspace, gp.user, [1])
    gp_client.post(workspace, "concern", {"category": "neglect", "detail": CONCERN}, rag="amber")
    lead_client.post(workspace, "update", {"text": UPDATE})
    workspace.refresh_from_db()
    return Team(workspace, lead_client, gp_client)


# --- the pages ------------------------------------------------------------------------------------------


def url(workspace: Workspace) -> str:
    return f"/workspaces/{workspace.public_id}/"


def signed_in(new_page, persona) -> Page:
    page = new_page()
    sign_in(page, persona)
    return page


def open_workspace(new_page, persona, workspace: Workspace) -> Page:
    page = signed_in(new_page, persona)
    page.goto(url(workspace))
    return page


def wait_until(page: Page, condition: Callable[[], bool], what: str, timeout_ms: int = 10_000) -> None:
    """Poll the database while the page works (Playwright's own waits see only the page)."""
    for _ in range(timeout_ms // 100):
        if condition():
            return
        page.wait_for_timeout(100)
    pytest.fail(f"timed out waiting for {what}")


def expect_posting_stopped(page: Page) -> None:
    expect(page.locator("[data-tac-stopped]")).to_be_visible()
    expect(page.locator(COMPOSER)).to_be_hidden()


def try_to_post(page: Page, text: str) -> None:
    """Submit the composer even though the page hid it: what a member pressing Post would send."""
    page.evaluate("""(text) => {
        document.querySelector('#post-text').value = text;
        document.querySelector('form[data-tac-composer]').requestSubmit();
    }""", text)


def rewrite_detail(page: Page, workspace: Workspace, change: Callable[[dict], None]) -> None:
    """The server's answer to GET /api/v1/workspaces/<id>, changed by `change` before the page sees it."""
    def handle(route):
        response = route.fetch()
        detail = response.json()
        change(detail)
        route.fulfill(response=response, json=detail)

    page.route(f"**/api/v1/workspaces/{workspace.public_id}", handle)


def requests_to(page: Page, suffix: str) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if r.url.split("?")[0].endswith(suffix) else None)
    return seen


def post_json_from(page: Page, path: str, body: dict) -> dict:
    """A POST from the page's own session (its cookie and CSRF token), without the page's scripts."""
    return page.evaluate("""async ([path, body]) => {
        const response = await fetch(path, {
            method: 'POST', credentials: 'same-origin', body: JSON.stringify(body),
            headers: {'Content-Type': 'application/json', Accept: 'application/json',
                      'X-CSRFToken': document.querySelector('input[name=csrfmiddlewaretoken]').value},
        });
        return {status: response.status, body: await response.json()};
    }""", [path, body])


def key_changed_sentence(user: Professional) -> re.Pattern:
    return re.compile(rf"{re.escape(user.full_name)}'s key changed on [^.]+ after a password reset: compare the "
                      r"safety number with them, then admit it\.")


# --- what a hostile server makes ------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode()


def server_identity_key(user: Professional) -> tuple[crypto.Identity, IdentityKey]:
    """A key pair the server made, stored as an earlier identity key of `user` with a valid binding: it
    appears in author_keys like any old key of theirs."""
    identity = crypto.Identity.generate()
    version = user.identity_keys.aggregate(top=Max("version"))["top"] + 1
    row = IdentityKey.objects.create(
        professional=user, version=version, sign_public=identity.sign_public, box_public=identity.box_public,
        binding_signature=identity.binding_signature(user.public_id), wrapped_secret=os.urandom(72),
        replaced_at=timezone.now())
    return identity, row


def swap_identity_key(user: Professional) -> crypto.Identity:
    """Rewrite the user's current identity key in place to one the server holds (no reset, no new row)."""
    identity = crypto.Identity.generate()
    IdentityKey.objects.filter(pk=user.current_identity_key().pk).update(
        sign_public=identity.sign_public, box_public=identity.box_public,
        binding_signature=identity.binding_signature(user.public_id))
    return identity


def forge_epoch(workspace: Workspace, signer: crypto.Identity, signer_row: IdentityKey,
                recipients: list[Professional]) -> tuple[Epoch, bytes]:
    """The next epoch as the server would write it: a manifest chained from the real current one, listing
    the lead with the server's key and signed with it, the epoch key (the server's) wrapped for every
    recipient's real key and committed to, so that only the signer check can catch it."""
    workspace.refresh_from_db()
    previous = Epoch.objects.get(workspace=workspace, number=workspace.current_epoch)
    number = previous.number + 1
    epoch_key = crypto.epoch_key_new()
    keys = {p.public_id: p.current_identity_key() for p in recipients}
    wraps = {pid: crypto.epoch_key_wrap(workspace.public_id, number, epoch_key, bytes(k.box_public))
             for pid, k in keys.items()}
    custodian = CustodianKey.objects.get(is_current=True)
    custodian_wrap = crypto.epoch_key_wrap(workspace.public_id, number, epoch_key, bytes(custodian.box_public))
    lead_id = workspace.lead.public_id
    members = [crypto.ManifestMember(lead_id, signer.sign_public, signer.box_public, "lead")] + [
        crypto.ManifestMember(pid, bytes(k.sign_public), bytes(k.box_public), "member")
        for pid, k in keys.items() if pid != lead_id]
    manifest = crypto.manifest_bytes(
        workspace_id=workspace.public_id, epoch=number, prev_manifest_hash=bytes(previous.manifest_hash),
        members=members, custodian_id=bytes(custodian.key_id),
        wraps_digest=crypto.wraps_hash(wraps, custodian_wrap),
        key_commitment=crypto.epoch_key_commitment(workspace.public_id, number, epoch_key),
        created_ms=int(timezone.now().timestamp() * 1000))
    epoch = Epoch.objects.create(
        workspace=workspace, number=number, manifest=manifest, manifest_signature=signer.sign(manifest),
        manifest_hash=crypto.hash32(manifest), signed_by=workspace.lead, signer_key=signer_row,
        custodian_key=custodian, start_seq=workspace.last_seq)
    people = {p.public_id: p for p in recipients}
    EpochWrap.objects.bulk_create(
        [EpochWrap(epoch=epoch, recipient=people[pid], recipient_key=keys[pid], sealed=sealed,
                   created_by=workspace.lead) for pid, sealed in wraps.items()]
        + [EpochWrap(epoch=epoch, custodian_key=custodian, sealed=custodian_wrap, created_by=workspace.lead)])
    Epoch.objects.filter(pk=previous.pk).update(retired_at=timezone.now())
    Workspace.objects.filter(pk=workspace.pk).update(current_epoch=number, roster_version=F("roster_version") + 1)
    return epoch, epoch_key


def forge_post(workspace: Workspace, author: Professional, signer: crypto.Identity, epoch_key: bytes, *,
               kind: str, body: dict, rag: str = "") -> Post:
    """A post stored by the server "as" `author`, signed with a key the server holds, in the current epoch
    and after the newest post (so only its signing key is wrong)."""
    workspace.refresh_from_db()
    payload = seal_post(identity=signer, author_id=author.public_id, workspace_id=workspace.public_id,
                        epoch=workspace.current_epoch, epoch_key=epoch_key, kind=kind, body=body, rag=rag,
                        prev=newest(workspace))
    post = Post.objects.create(
        workspace=workspace, seq=workspace.last_seq + 1, post_id=uuid.UUID(payload["post_id"]), author=author,
        author_key=author.current_identity_key(), epoch=Epoch.objects.get(workspace=workspace,
                                                                          number=workspace.current_epoch),
        kind=kind, rag=rag, client_time=timezone.now(), header=base64.b64decode(payload["header"]),
        nonce=base64.b64decode(payload["nonce"]), ciphertext=base64.b64decode(payload["ciphertext"]),
        signature=base64.b64decode(payload["signature"]))
    Workspace.objects.filter(pk=workspace.pk).update(last_seq=post.seq)
    return post


def opens_with(sealed: bytes, identity: crypto.Identity, workspace: Workspace, epoch: int) -> bool:
    try:
        crypto.epoch_key_unwrap(bytes(sealed), identity, workspace.public_id, epoch)
    except crypto.DecryptionError:
        return False
    return True


def manifest_members(epoch: Epoch) -> set[uuid.UUID]:
    return {m.public_id for m in crypto.manifest_parse(bytes(epoch.manifest)).members}


# --- 1. account takeover through re-keying --------------------------------------------------------------


def test_it_never_rekeys_a_reset_member_until_a_colleague_admits_the_new_key(new_page, lead, gp, team):
    """Attack (item 1): a site administrator takes a member's account over by resetting its password,
    which makes new keys, and waits for a colleague's open page to re-wrap every epoch for them.
    Rule: no client wraps an epoch key for a key no current member has confirmed by comparing safety
    numbers, and the server refuses a re-key until one has. The team sees "<name>'s key changed on
    <date> after a password reset: compare the safety number with them, then admit it"; the member is
    told they are waiting; once admitted they read everything they had, the shared history included,
    and can post."""
    workspace = team.workspace
    gp_id = str(gp.user.public_id)
    password_reset(gp, "a new password for the gp after a reset")
    allow_totp_reuse(gp)
    new_key = gp.user.current_identity_key()

    lead_page = signed_in(new_page, lead)
    rekeys = requests_to(lead_page, "/rekey")
    lead_page.goto(url(workspace))
    changed = lead_page.locator(f"[data-tac-key-changed='{gp_id}']")
    expect(changed).to_have_text(key_changed_sentence(gp.user))
    expect(lead_page.locator(WARNINGS)).to_contain_text(key_changed_sentence(gp.user))
    # "Live" comes after the page's own key maintenance has run; give its events a moment more.
    expect(lead_page.locator("[data-tac-connection]")).to_contain_text("Live")
    lead_page.wait_for_timeout(1500)
    assert rekeys == []
    assert not EpochWrap.objects.filter(recipient_key=new_key).exists()

    # What the page does not do, done by hand with the lead's session: the server refuses it too.
    wraps = team.lead.wraps_for(workspace, gp.user, [1, 2])
    answer = post_json_from(lead_page, f"/api/v1/workspaces/{workspace.public_id}/rekey",
                            {"member": gp_id, "wraps": [{"epoch": n, "sealed": b64(s)} for n, s in wraps.items()]})
    assert answer["status"] == 403, answer
    assert "confirmed" in answer["body"]["reason"]
    assert not EpochWrap.objects.filter(recipient_key=new_key).exists()

    gp_page = open_workspace(new_page, gp, workspace)
    waiting = gp_page.locator("[data-tac-waiting]")
    expect(waiting).to_contain_text("You are waiting for your team")
    expect(gp_page.locator("[data-tac-my-safety]")).to_have_text(expected_safety_number(gp.user))
    expect(gp_page.locator(COMPOSER)).to_be_hidden()
    expect(gp_page.locator(".tac-post", has_text=CONCERN)).to_have_count(0)

    lead_page.get_by_role("button", name=f"I have compared it: admit {gp.user.full_name}'s new key").click()
    wait_until(lead_page, lambda: set(EpochWrap.objects.filter(recipient_key=new_key)
                                      .values_list("epoch__number", flat=True)) == {1, 2},
               "the lead's page to re-key epochs 1 and 2 for the admitted key")
    expect(changed).to_have_count(0)
    expect(lead_page.locator(f"[data-tac-safety='{gp_id}']")).to_have_text(expected_safety_number(gp.user))

    gp_page.reload()
    expect(gp_page.get_by_role("heading", name=CHILD)).to_be_visible()  # the details, from epoch 1
    for text in (EARLIER, CONCERN, UPDATE):
        expect(gp_page.locator(".tac-post", has_text=text)).to_be_visible()
    expect(gp_page.locator(".tac-post--refused")).to_have_count(0)
    expect(waiting).to_be_hidden()
    gp_page.get_by_label("What is the concern?").fill("Posted with the admitted key")
    gp_page.get_by_role("button", name="Post", exact=True).click()
    expect(gp_page.locator(".tac-post", has_text="Posted with the admitted key")).to_be_visible()
    assert Post.objects.filter(workspace=workspace, author=gp.user, author_key=new_key).count() == 1


# --- 2. a ghost member through a forged invitation ------------------------------------------------------


def test_it_refuses_a_member_whose_invitation_the_server_signed(new_page, lead, outsider, team):
    """Attack (item 2): the server adds an identity key for the lead that it holds, and an accepted
    membership for someone the lead never invited, with an invitation signed by that key.
    Rule: an invitee joins only with an invitation signed by a key trusted for the current lead (the
    manifests', not the server's author_keys). The lead is not offered to admit them: the reason is on
    screen instead, and no epoch lists them or is wrapped for them."""
    workspace = team.workspace
    server_lead, _row = server_identity_key(lead.user)
    ghost = outsider.user
    nonce = os.urandom(crypto.INVITE_NONCE_BYTES)
    statement = crypto.invite_statement(workspace.public_id, ghost.public_id, member_key(ghost, "member").fingerprint,
                                        "member", workspace.current_epoch, nonce)
    Membership.objects.create(workspace=workspace, professional=ghost, role="member", state="accepted",
                              invited_by=lead.user, invite_signature=server_lead.sign(statement),
                              invite_epoch=workspace.current_epoch, invite_nonce=nonce)

    page = open_workspace(new_page, lead, workspace)
    entry = page.locator(f"[data-tac-member='{ghost.public_id}']")
    expect(entry).to_contain_text("Accepted, waiting to be admitted")
    expect(entry.locator(f"[data-tac-refused='{ghost.public_id}']")).to_contain_text(
        f"{ghost.full_name} cannot be admitted: no invitation signed by the lead (or a deputy) for their current key")
    expect(entry.get_by_role("button", name=f"Admit {ghost.full_name}")).to_have_count(0)
    page.wait_for_timeout(500)
    assert not EpochWrap.objects.filter(recipient=ghost).exists()
    assert all(ghost.public_id not in manifest_members(e) for e in Epoch.objects.filter(workspace=workspace))
    assert Epoch.objects.filter(workspace=workspace).count() == 2


# --- 3. a removed member re-admitted --------------------------------------------------------------------


def test_it_refuses_to_readmit_a_removed_member_on_their_old_invitation(new_page, lead, gp, team):
    """Attack (item 3): after the lead removed the GP, the server sets their membership back to accepted,
    with the invitation the lead signed when first inviting them.
    Rule: an invitation is single use, bound to the epoch it admits into: one that a later manifest has
    used (listed the invitee after it) is refused, with the reason on screen and no way to admit them."""
    workspace = team.workspace
    team.lead.rotate(workspace, remove=gp.user)  # epoch 3, without the GP
    Membership.objects.filter(workspace=workspace, professional=gp.user).update(state="accepted", left_at=None)
    assert Membership.objects.get(workspace=workspace, professional=gp.user).invite_epoch == 1

    page = open_workspace(new_page, lead, workspace)
    entry = page.locator(f"[data-tac-member='{gp.user.public_id}']")
    expect(entry).to_contain_text("Accepted, waiting to be admitted")
    expect(entry.locator(f"[data-tac-refused='{gp.user.public_id}']")).to_contain_text(
        f"{gp.user.full_name} cannot be admitted: this invitation was used before")
    expect(entry.get_by_role("button", name=f"Admit {gp.user.full_name}")).to_have_count(0)
    page.wait_for_timeout(500)
    assert not EpochWrap.objects.filter(recipient=gp.user, epoch__number__gte=3).exists()
    assert all(gp.user.public_id not in manifest_members(e)
               for e in Epoch.objects.filter(workspace=workspace, number__gte=3))


# --- 4. a forged epoch "signed by the lead" -------------------------------------------------------------


def test_it_refuses_an_epoch_signed_with_a_key_the_server_made(new_page, lead, gp, team):
    """Attack (item 4): the server stores an identity key of its own for the lead and a next epoch whose
    manifest, chained from the real one, lists the lead with that key and is signed by it; the epoch
    key is the server's, wrapped for both members and committed to, so members could post in it.
    Rule: each manifest verifies under the lead key the previous verified manifest names (or one the
    team confirmed); otherwise the record is refused as a whole, shown as unverifiable, and nothing is
    posted."""
    workspace = team.workspace
    server_lead, row = server_identity_key(lead.user)
    forged, _key = forge_epoch(workspace, server_lead, row, [lead.user, gp.user])

    for persona in (gp, lead):
        page = open_workspace(new_page, persona, workspace)
        expect(page.locator(WARNINGS)).to_contain_text(
            "This workspace's record could not be verified, so nothing from it is shown: epoch 3's manifest is not "
            "signed by the lead the record names")
        expect_posting_stopped(page)
        expect(page.locator(".tac-post")).to_have_count(0)
        try_to_post(page, "Posted in the server's epoch")
        expect(page.locator(ERRORS)).to_contain_text("Posting is stopped")
    page.wait_for_timeout(500)
    assert not Post.objects.filter(epoch=forged).exists()


# --- 5. swapped sealed keys -----------------------------------------------------------------------------


def test_it_refuses_a_sealed_epoch_key_the_server_swapped(new_page, lead, gp, team):
    """Attack (item 5): the server replaces every member's wrap of the current epoch with a wrap of a key
    it chose (correctly bound to the workspace and epoch), so their next posts would be readable.
    Rule: a key opened from a wrap is used only if it matches the signed manifest's key commitment; a
    swapped one is a warning, never used, and posting stops."""
    workspace = team.workspace
    server_key = crypto.epoch_key_new()
    for wrap in EpochWrap.objects.filter(epoch__workspace=workspace, epoch__number=2,
                                         recipient__isnull=False).select_related("recipient_key"):
        EpochWrap.objects.filter(pk=wrap.pk).update(sealed=crypto.epoch_key_wrap(
            workspace.public_id, 2, server_key, bytes(wrap.recipient_key.box_public)))
    posts_before = Post.objects.filter(workspace=workspace).count()
    concern = Post.objects.get(workspace=workspace, kind="concern")

    for persona in (gp, lead):
        page = open_workspace(new_page, persona, workspace)
        expect(page.locator(WARNINGS)).to_contain_text(
            "The key the server gave you for epoch 2 is not the one the lead sealed: it was not used.")
        expect_posting_stopped(page)
        expect(page.locator(f"#post-{concern.post_id}")).to_have_class(re.compile(r"\btac-post--refused\b"))
        expect(page.locator(".tac-post", has_text=CONCERN)).to_have_count(0)
        try_to_post(page, "Posted under the server's key")
        expect(page.locator(ERRORS)).to_contain_text("Posting is stopped")
    page.wait_for_timeout(500)
    assert Post.objects.filter(workspace=workspace).count() == posts_before
    for post in Post.objects.filter(workspace=workspace):
        with pytest.raises(crypto.DecryptionError):
            crypto.post_open(bytes(post.header), bytes(post.nonce), bytes(post.ciphertext), server_key)


# --- 6. a swapped custodian key -------------------------------------------------------------------------


def server_custodian_key() -> tuple[crypto.Identity, dict]:
    identity = crypto.custodian_identity(os.urandom(32))
    key_id = crypto.custodian_key_id(identity.box_public, identity.sign_public)
    return identity, {"box_public": b64(identity.box_public), "sign_public": b64(identity.sign_public),
                      "label": "Operator's key", "key_id": key_id.hex()}


def test_it_seals_a_new_epoch_to_the_pinned_custodian_key_not_the_apis(new_page, lead, team, custodian):
    """Attack (item 6, the API answer): /api/v1/custodian answers with a key the server holds while the
    lead's page must start a new epoch (a member "left": rotation_required).
    Rule: clients take the custodian key from the pin served with the scripts, never from an API answer:
    the new epoch's manifest names the pinned key and its custodian wrap opens only with the pinned key."""
    workspace = team.workspace
    server_custodian, answer = server_custodian_key()
    Workspace.objects.filter(pk=workspace.pk).update(rotation_required=True)
    page = signed_in(new_page, lead)
    asked = requests_to(page, "/api/v1/custodian")
    page.route("**/api/v1/custodian", lambda route: route.fulfill(json=answer))
    page.goto(url(workspace))
    # The page starts epoch 3, then carries the child's details into it: wait for both, so that nothing
    # is still writing when the test's database is emptied.
    wait_until(page, lambda: Post.objects.filter(workspace=workspace, epoch__number=3, kind="details").exists(),
               "the lead's page to start epoch 3")

    epoch = Epoch.objects.get(workspace=workspace, number=3)
    manifest = crypto.manifest_parse(bytes(epoch.manifest))
    assert manifest.custodian_id == crypto.custodian_key_id(custodian.box_public, custodian.sign_public)
    sealed = bytes(EpochWrap.objects.get(epoch=epoch, custodian_key__isnull=False).sealed)
    key = crypto.epoch_key_unwrap(sealed, custodian, workspace.public_id, 3)
    assert crypto.epoch_key_commitment(workspace.public_id, 3, key) == manifest.key_commitment
    assert not opens_with(sealed, server_custodian, workspace, 3)
    assert asked == []


def test_it_never_seals_to_a_custodian_key_the_server_installed(new_page, lead, team, custodian):
    """Attack (item 6, the database): the server installs a current custodian key of its own (no
    rotation signature, not in the pin), answers /api/v1/custodian with it, and forces a new epoch.
    (The schedule is not the server's to force: it comes from the signed manifest's time, so backdating
    Epoch.created_at changes nothing; rotation_required does.)
    Rule: new epochs seal to the newest pinned key only. The server then refuses the lead's manifest,
    which the page shows as a clear error; no epoch is ever wrapped for the server's key."""
    workspace = team.workspace
    server_custodian, answer = server_custodian_key()
    CustodianKey.objects.filter(is_current=True).update(is_current=False, retired_at=timezone.now())
    server_row = CustodianKey.objects.create(
        box_public=server_custodian.box_public, sign_public=server_custodian.sign_public,
        key_id=bytes.fromhex(answer["key_id"]), label=answer["label"], is_current=True)
    Workspace.objects.filter(pk=workspace.pk).update(rotation_required=True)
    page = signed_in(new_page, lead)
    page.route("**/api/v1/custodian", lambda route: route.fulfill(json=answer))
    page.goto(url(workspace))
    expect(page.locator(WARNINGS)).to_contain_text(
        "The keys could not be renewed: the manifest names a custodian key that is not the current one")

    assert not EpochWrap.objects.filter(custodian_key=server_row).exists()
    for epoch in Epoch.objects.filter(workspace=workspace):
        assert crypto.manifest_parse(bytes(epoch.manifest)).custodian_id != bytes(server_row.key_id)
        sealed = bytes(EpochWrap.objects.get(epoch=epoch, custodian_key__isnull=False).sealed)
        assert opens_with(sealed, custodian, workspace, epoch.number)
        assert not opens_with(sealed, server_custodian, workspace, epoch.number)


# --- 7. swapped member keys without a reset -------------------------------------------------------------


def test_it_never_wraps_for_a_member_key_the_server_rewrote(new_page, lead, gp, team):
    """Attack (item 7): after the lead compared and marked the GP verified, the server rewrites the GP's
    identity key row in place to a key it holds (valid binding, no reset), re-signs the lead's stored
    confirmation for it with a key of its own, stores a red concern signed with it "as" the GP, claims
    the GP needs re-keying, and forces a new epoch.
    Rule: who a professional verified lives only in their own encrypted, signed saved state, and a key
    is trusted only as manifests and confirmations (by keys trusted for current members) allow. The
    "Verified by you" tag goes, the changed key is flagged, nothing is wrapped for the server's key, and
    the forged post is refused, not shown as the GP's."""
    workspace = team.workspace
    gp_id = str(gp.user.public_id)
    page = open_workspace(new_page, lead, workspace)
    entry = page.locator(f"[data-tac-member='{gp_id}']")
    entry.get_by_role("button", name=f"Mark {gp.user.full_name} as verified").click()
    expect(entry).to_contain_text("Verified by you")
    wait_until(page, lambda: KeyConfirmation.objects.filter(confirmer=lead.user, subject=gp.user).exists(),
               "the lead's confirmation of the GP's key")

    epoch_key = team.lead.keys(workspace).epoch_keys[2]  # as if it leaked: only the signing key is wrong
    server_gp = swap_identity_key(gp.user)
    server_lead, _row = server_identity_key(lead.user)
    confirmation = KeyConfirmation.objects.get(confirmer=lead.user, subject=gp.user)
    statement = crypto.key_confirmation_statement(lead.user.public_id, gp.user.public_id, server_gp.fingerprint(),
                                                  confirmation.confirmed_ms)
    KeyConfirmation.objects.filter(pk=confirmation.pk).update(signature=server_lead.sign(statement))
    forged = forge_post(workspace, gp.user, server_gp, epoch_key, kind="concern", rag="red",
                        body={"category": "sexual_abuse", "detail": "Forged disclosure in the GP's name"})
    Workspace.objects.filter(pk=workspace.pk).update(rotation_required=True)
    rewrite_detail(page, workspace, lambda d: d["needs_rekey"].append({"member": gp_id, "epochs": [1, 2]}))
    rekeys = requests_to(page, "/rekey")
    page.reload()

    expect(entry.locator(f"[data-tac-key-changed='{gp_id}']")).to_be_visible()
    expect(entry).not_to_contain_text("Verified by you")
    expect(page.locator(WARNINGS)).to_contain_text(f"{gp.user.full_name}'s key changed on")
    node = page.locator(f"#post-{forged.post_id}")
    expect(node).to_have_class(re.compile(r"\btac-post--refused\b"))
    expect(node.locator("[data-problem]")).to_have_text(
        "Refused: it is signed with a key that is not its author's verified key: it is not shown as theirs")
    expect(node.locator("[data-author]")).to_have_text("Not verified")
    expect(node).not_to_contain_text("Forged disclosure")
    # The page tries the forced rotation with the GP's signed key; today's server then refuses the
    # manifest, since the row no longer holds that key. Either way nothing opens with the server's key.
    wait_until(page, lambda: Epoch.objects.filter(workspace=workspace, number=3).exists()
               or "could not be renewed" in page.locator(WARNINGS).inner_text(),
               "the lead's page to try a new epoch")
    page.wait_for_timeout(500)
    assert rekeys == []
    for wrap in EpochWrap.objects.filter(epoch__workspace=workspace, recipient=gp.user).select_related("epoch"):
        assert not opens_with(bytes(wrap.sealed), server_gp, workspace, wrap.epoch.number)


# --- 8. rollback ----------------------------------------------------------------------------------------


def remembered(page: Page, persona) -> bool:
    """Whether this page saved what it saw, on the server and in localStorage."""
    local = page.evaluate("(key) => localStorage.getItem(key)", f"tac.state.{persona.user.public_id}")
    return local is not None and ClientState.objects.filter(professional=persona.user).exists()


def test_it_stops_posting_when_the_server_hides_the_newest_epoch(new_page, gp, team):
    """Attack (item 8, epochs): after a member's device has seen epoch 3, the server serves the workspace
    without it, so they would post under epoch 2 (which a removed member may still hold); then it also
    deletes their saved state on the server, to forget what they saw.
    Rule: each client remembers the highest verified epoch and its manifest hash, in the professional's
    own encrypted state on the server and in localStorage; an older record is a loud warning and posting
    stops, even when the server's copy of the state is gone."""
    workspace = team.workspace
    team.lead.rotate(workspace)  # epoch 3, no posts in it
    page = open_workspace(new_page, gp, workspace)
    expect(page.locator(".tac-post", has_text=UPDATE)).to_be_visible()
    wait_until(page, lambda: remembered(page, gp), "the GP's page to save what it saw")

    def without_epoch_3(detail: dict) -> None:
        detail["epochs"] = [e for e in detail["epochs"] if e["number"] < 3]
        detail["current_epoch"] = 2

    hidden = "Your devices have seen key epoch 3, but the server shows only up to 2: it is hiding a newer epoch."
    rewrite_detail(page, workspace, without_epoch_3)
    page.reload()
    expect(page.locator(WARNINGS)).to_contain_text(hidden)
    expect_posting_stopped(page)

    ClientState.objects.filter(professional=gp.user).delete()
    posts_before = Post.objects.filter(workspace=workspace).count()
    page.reload()
    expect(page.locator(WARNINGS)).to_contain_text(hidden)  # localStorage remembers
    expect_posting_stopped(page)
    try_to_post(page, "Posted under the older epoch")
    expect(page.locator(ERRORS)).to_contain_text("Posting is stopped")
    page.wait_for_timeout(500)
    assert Post.objects.filter(workspace=workspace).count() == posts_before


def test_it_stops_posting_when_the_server_deletes_the_newest_post(new_page, gp, team):
    """Attack (item 8, posts): after a member's device has seen posts up to #4, the server deletes #4.
    Rule: each client remembers the newest post it saw (number and hash); a record that ends before it is
    a loud warning and posting stops."""
    workspace = team.workspace
    page = open_workspace(new_page, gp, workspace)
    expect(page.locator(".tac-post", has_text=UPDATE)).to_be_visible()
    wait_until(page, lambda: remembered(page, gp), "the GP's page to save what it saw")

    Post.objects.filter(workspace=workspace, seq=4).delete()
    Workspace.objects.filter(pk=workspace.pk).update(last_seq=3)
    page.reload()
    expect(page.locator(WARNINGS)).to_contain_text(
        "Your devices saw posts up to #4 here, but the server now shows only up to #3: posts have been withheld or "
        "deleted. Posting is stopped.")
    expect_posting_stopped(page)
