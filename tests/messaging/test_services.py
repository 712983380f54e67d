"""messaging.services against the real database, persona by persona: the lead, a member (the GP, after
accepting and being admitted to an epoch), a removed member, an offboarded member, a manager who is not a
member and an outsider from another agency. Clients are the Python twin of the browser's
(tests/messaging/factories.py), so every post, manifest and wrap here is real crypto."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import uuid
from dataclasses import dataclass

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from accounts.services import professional_offboard
from audit.models import AuditEvent
from messaging import payloads, selectors, services
from messaging.models import Epoch, EpochWrap, KeyConfirmation, Membership, Post, Workspace
from messaging.schemas import SEALED_EPOCH_KEY_BYTES, EpochBundle
from messaging.services import Conflict, checks
from tacclient.memory import Memory
from tacprotocol import crypto
from tacprotocol.workspace import MemberKey, TrustError, epoch_bundle, now_ms, seal_post
from tests.conftest import Persona
from tests.messaging.factories import Client, due, envelope, flip, join, member_key, newest, password_reset

pytestmark = pytest.mark.django_db

DETAILS = {"name": "Child A", "dob": "2019-04-02", "nhs_number": "9434765919"}


# --- helpers --------------------------------------------------------------------------------------------


def audit_since(pk: int) -> list[AuditEvent]:
    """Events written after the one `audit_head` returned, in the order written (across chains)."""
    return list(AuditEvent.objects.filter(pk__gt=pk).order_by("pk"))


def audit_head() -> int:
    last = AuditEvent.objects.order_by("-pk").first()
    return last.pk if last else 0


def kinds(events: list[AuditEvent]) -> list[str]:
    return [e.kind for e in events]


def membership(workspace: Workspace, persona: Persona) -> Membership:
    return Membership.objects.filter(workspace=workspace, professional=persona.user).latest("invited_at")


def post(client: Client, workspace: Workspace, kind: str, body: dict | None = None, **fields):
    return client.post(workspace, kind, body or {"text": f"{kind} by {client.user.full_name}"}, **fields)


def submit(author: Persona, workspace: Workspace, payload: dict):
    return services.post_create(author=author.user, workspace=workspace, envelope=envelope(payload))


def confirmation(client: Client, subject, *, signer: crypto.Identity | None = None, fingerprint: bytes | None = None,
                 at_ms: int | None = None) -> dict:
    """The arguments of services.key_confirm as `client` makes them for `subject`'s current key; the
    keywords make it wrong (another signer, another fingerprint, another time)."""
    at_ms = at_ms or now_ms()
    fp = fingerprint or member_key(subject, "member").fingerprint
    statement = crypto.key_confirmation_statement(client.user.public_id, subject.public_id, fp, at_ms)
    return {"fingerprint": fp, "confirmed_ms": at_ms, "signature": (signer or client.identity).sign(statement)}


def confirm(client: Client, workspace: Workspace, subject, **wrong):
    return services.key_confirm(confirmer=client.user, workspace=workspace, subject=subject,
                                **confirmation(client, subject, **wrong))


def stray_key_payload(client: Client, workspace: Workspace, epoch: int | None = None) -> dict:
    """A well-formed, correctly signed post under an epoch key the author made up (they have none)."""
    workspace.refresh_from_db()
    return seal_post(identity=client.identity, author_id=client.user.public_id, workspace_id=workspace.public_id,
                     epoch=epoch or workspace.current_epoch, epoch_key=crypto.epoch_key_new(), kind="update",
                     body={"text": "let me in"})


def sealed_with_header(client: Client, workspace: Workspace, kind: str, body: dict, **header_fields) -> dict:
    """A post whose header fields are set directly, past what seal_post allows (a due day after 9999)."""
    workspace.refresh_from_db()
    keys = client.keys(workspace)
    header_fields.setdefault("client_time_ms", now_ms())
    header = crypto.PostHeader(workspace_id=workspace.public_id, epoch=keys.current_epoch, post_id=uuid.uuid4(),
                               author_id=client.user.public_id, author_fingerprint=client.identity.fingerprint(),
                               kind=kind, **header_fields)
    sealed = crypto.post_seal(client.identity, header, json.dumps(body).encode(), keys.epoch_keys[keys.current_epoch])
    return dict(zip(("header", "nonce", "ciphertext", "signature"), (base64.b64encode(v).decode() for v in sealed),
                    strict=True))


@dataclass
class Team:
    workspace: Workspace
    lead: Client
    gp: Client
    removed: Client
    offboarded: Client
    outsider: Client
    manager: Client
    removed_keys: object  # what the removed member's client kept: WorkspaceKeys up to their removal

    def client(self, who: str) -> Client:
        return getattr(self, who)


@pytest.fixture
def team(lead, gp, manager, outsider, make_persona, custodian) -> Team:
    """The lead's workspace (epoch 1: lead; details posted). The GP, a school nurse and a second GP join
    at epoch 2. The school nurse is removed (epoch 3). The second GP is offboarded by their agency admin."""
    nurse = make_persona("nurse@school.example", "school", full_name="Nell Nurse", job_title="School nurse")
    locum = make_persona("locum@gp.example", "gp", full_name="Dr Lou Locum", job_title="GP")
    clients = {name: Client(p, custodian) for name, p in
               [("lead", lead), ("gp", gp), ("removed", nurse), ("offboarded", locum), ("outsider", outsider),
                ("manager", manager)]}
    workspace = clients["lead"].create_workspace(DETAILS)
    join(clients["lead"], workspace, clients["gp"], clients["removed"], clients["offboarded"])
    post(clients["gp"], workspace, "update", {"text": "Seen at surgery"})
    removed_keys = clients["removed"].keys(workspace)
    clients["lead"].rotate(workspace, remove=nurse.user)
    professional_offboard(admin=gp.user, professional=locum.user)
    workspace.refresh_from_db()
    assert workspace.rotation_required  # offboarding ends the membership: nobody posts until new keys
    clients["lead"].rotate(workspace)
    for c in clients.values():
        c.user.refresh_from_db()
    workspace.refresh_from_db()
    assert workspace.current_epoch == 4
    return Team(workspace=workspace, removed_keys=removed_keys, **clients)


# --- every service, persona by persona ------------------------------------------------------------------

NOT_MEMBERS = ["removed", "offboarded", "outsider", "manager"]


def _calls(team: Team, who: str) -> dict:
    """Each service as `who` would call it, with the exception it must raise."""
    ws, actor = team.workspace, team.client(who)
    some_wrap = team.lead.wraps_for(ws, team.gp.user, [3])
    return {
        "post_create": (PermissionDenied, lambda: submit(actor.persona, ws, stray_key_payload(actor, ws))),
        "post_create_with_a_kept_key": (
            PermissionDenied,
            lambda: submit(actor.persona, ws, actor.seal(ws, "update", {"text": "still here?"}, epoch=2,
                                                         keys=team.removed_keys))
            if who == "removed" else submit(actor.persona, ws, stray_key_payload(actor, ws, epoch=2)),
        ),
        "epoch_rotate": (PermissionDenied, lambda: services.epoch_rotate(
            lead=actor.user, workspace=ws, epoch=EpochBundle.parse(team.lead.next_epoch_bundle(ws)))),
        "membership_invite": (PermissionDenied, lambda: services.membership_invite(
            lead=actor.user, workspace=ws, professional=team.manager.user if who != "manager" else team.outsider.user,
            invite_signature=bytes(64), invite_nonce=bytes(16))),
        "membership_respond": (Conflict, lambda: services.membership_respond(
            professional=actor.user, workspace=ws, accept=True)),
        "membership_leave": (Conflict, lambda: services.membership_leave(professional=actor.user, workspace=ws)),
        "member_rekey": (PermissionDenied, lambda: services.member_rekey(
            actor=actor.user, workspace=ws, member=team.gp.user, wraps=some_wrap)),
        "history_share": (PermissionDenied, lambda: services.history_share(
            lead=actor.user, workspace=ws, member=team.gp.user, wraps=some_wrap)),
        "key_confirm": (PermissionDenied, lambda: confirm(actor, ws, team.gp.user)),
        "workspace_close": (PermissionDenied, lambda: services.workspace_close(
            lead=actor.user, workspace=ws, status="closed")),
        "post_list": (Http404, lambda: selectors.post_list(professional=actor.user, workspace=ws)),
        "workspace_detail": (Http404, lambda: selectors.workspace_detail(professional=actor.user, workspace=ws)),
        "author_keys": (Http404, lambda: selectors.author_keys(professional=actor.user, workspace=ws)),
        "members_needing_rekey": (Http404, lambda: selectors.members_needing_rekey(
            professional=actor.user, workspace=ws)),
    }


SERVICES = ["post_create", "post_create_with_a_kept_key", "epoch_rotate", "membership_invite",
            "membership_respond", "membership_leave", "member_rekey", "history_share", "key_confirm",
            "workspace_close", "post_list", "workspace_detail", "author_keys", "members_needing_rekey"]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("who", NOT_MEMBERS)
def test_it_refuses_every_service_to_someone_who_is_not_a_member(team, who, service, capture_events,
                                                                 django_capture_on_commit_callbacks):
    expected, call = _calls(team, who)[service]
    before = (audit_head(), Post.objects.count(), Epoch.objects.count(), EpochWrap.objects.count(),
              Membership.objects.count(), list(Membership.objects.values_list("state", flat=True).order_by("pk")))
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(expected):
        call()
    after = (audit_head(), Post.objects.count(), Epoch.objects.count(), EpochWrap.objects.count(),
             Membership.objects.count(), list(Membership.objects.values_list("state", flat=True).order_by("pk")))
    assert after == before
    assert capture_events == []


@pytest.mark.parametrize("who", NOT_MEMBERS)
def test_it_refuses_a_read_position_from_someone_who_is_not_an_active_member(team, who):
    actor = team.client(who)
    before = list(Membership.objects.values_list("pk", "last_read_seq").order_by("pk"))
    with pytest.raises(PermissionDenied, match="only an active member of the workspace has a read position"):
        services.read_position_update(professional=actor.user, workspace=team.workspace, seq=1)
    assert list(Membership.objects.values_list("pk", "last_read_seq").order_by("pk")) == before


@pytest.mark.parametrize("service", ["epoch_rotate", "membership_invite", "history_share", "workspace_close"])
def test_it_keeps_the_lead_only_services_from_a_member(team, service):
    expected, call = _calls(team, "gp")[service]
    assert expected is PermissionDenied
    with pytest.raises(PermissionDenied):
        call()


def test_it_lets_a_member_post_read_confirm_keys_and_move_their_read_position(team):
    ws, gp = team.workspace, team.gp
    created = post(gp, ws, "update", {"text": "Immunisations up to date"})
    assert created.created and created.post.author_id == gp.user.pk
    assert [p.body.get("text") for p in gp.read(ws)][-1] == "Immunisations up to date"
    confirmed = confirm(gp, ws, team.lead.user)
    assert (confirmed.confirmer_id, confirmed.subject_key) == (gp.user.pk, team.lead.user.current_identity_key())
    ws.refresh_from_db()
    services.read_position_update(professional=team.lead.user, workspace=ws, seq=created.post.seq)
    assert membership(ws, team.lead.persona).last_read_seq == created.post.seq


def test_it_keeps_an_offboarded_member_out_of_the_next_epoch(team):
    """Offboarding ends every membership at once; the lead's next epoch leaves them out, and cannot
    put them back."""
    assert membership(team.workspace, team.offboarded.persona).state == Membership.State.REMOVED
    assert not EpochWrap.objects.filter(epoch__number=4, recipient=team.offboarded.user).exists()
    bundle = team.lead.next_epoch_bundle(team.workspace)
    bundle_with = epoch_bundle(
        lead=team.lead.identity, workspace_id=team.workspace.public_id, epoch=5,
        prev_manifest_hash=team.lead.keys(team.workspace).manifest_hashes[4],
        members=[m for m in (member_key(team.lead.user, "lead"), member_key(team.gp.user, "member"),
                             member_key(team.offboarded.user, "member"))],
        custodian=team.lead.custodian_key)[0]
    with pytest.raises(Conflict, match="not the workspace's members"):
        services.epoch_rotate(lead=team.lead.user, workspace=team.workspace, epoch=EpochBundle.parse(bundle_with))
    services.epoch_rotate(lead=team.lead.user, workspace=team.workspace, epoch=EpochBundle.parse(bundle))


# --- workspace_create -----------------------------------------------------------------------------------


def test_it_opens_a_workspace_with_the_lead_alone_in_the_first_epoch(lead, custodian):
    lead_client = Client(lead, custodian)
    head = audit_head()
    workspace = lead_client.create_workspace(DETAILS)
    assert (workspace.lead_id, workspace.status, workspace.current_epoch, workspace.last_seq) == (
        lead.user.pk, "open", 1, 1)
    m = membership(workspace, lead)
    assert (m.role, m.state, m.first_epoch) == ("lead", "active", 1)
    epoch = Epoch.objects.get(workspace=workspace)
    assert {(w.recipient_id, w.custodian_key_id is not None) for w in epoch.wraps.all()} == {
        (lead.user.pk, False), (None, True)}
    # The custodian (offline, 2 of 3) can open the epoch key: the record is recoverable.
    custodian_wrap = epoch.wraps.get(custodian_key__isnull=False)
    assert lead_client.keys(workspace).epoch_keys[1] == crypto.epoch_key_unwrap(
        bytes(custodian_wrap.sealed), custodian, workspace.public_id, 1)
    [details] = lead_client.read(workspace)
    # Posted once the workspace exists, naming it and its reference inside the signed, encrypted body.
    assert (details.header.kind, details.body) == (
        "details", {**DETAILS, "workspace": str(workspace.public_id), "reference": workspace.reference})
    events = audit_since(head)
    assert kinds(events) == ["workspace.created", "post.created"]
    assert events[0].data == {"reference": workspace.reference}


def test_it_hands_out_references_tac_year_nnnn_in_order(lead, gp, custodian):
    year = timezone.now().year
    refs = [Client(p, custodian).create_workspace().reference for p in (lead, gp, lead)]
    numbers = []
    for ref in refs:
        match = re.fullmatch(rf"TAC-{year}-(\d{{4}})", ref)
        assert match, ref
        numbers.append(int(match.group(1)))
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]


def another_custodian_key() -> tuple[bytes, bytes, bytes]:
    """(key_id, box_public, sign_public) of a custodian key that is not installed or pinned."""
    other = crypto.custodian_identity(crypto.epoch_key_new())
    return crypto.custodian_key_id(other.box_public, other.sign_public), other.box_public, other.sign_public


def _resign(body: dict, identity: crypto.Identity) -> dict:
    manifest = base64.b64decode(body["epoch"]["manifest"])
    return {**body, "epoch": {**body["epoch"], "manifest_signature": base64.b64encode(identity.sign(manifest)).decode()}}


@pytest.mark.parametrize(
    ("case", "error", "reason"),
    [
        ("signed by someone else", ValidationError, "the manifest signature does not verify with the lead's key"),
        ("another custodian key", Conflict, "the manifest names a custodian key that is not the current one"),
        ("a previous manifest that does not exist", Conflict, "does not chain to the current epoch's manifest"),
        ("epoch 2 first", Conflict, "the next epoch is 1, not 2"),
        ("the GP in it too", Conflict, "the manifest's members are not the workspace's members"),
        ("nobody in it", Conflict, "the manifest's members are not the workspace's members"),
        ("the lead as a plain member", ValidationError, "the manifest must name exactly the lead professional"),
        ("another workspace's manifest", ValidationError, "the manifest is for another workspace"),
        ("a manifest from last year", ValidationError, "more than 10 minutes from the server's clock"),
        ("a first post that is not the details", ValidationError, "the first post of a new workspace"),
    ],
)
def test_it_refuses_a_workspace_whose_first_epoch_is_wrong(lead, gp, custodian, case, error, reason):
    lead_client = Client(lead, custodian)
    reference_before = lead_client.create_workspace().reference
    head = audit_head()
    fields = {
        "another custodian key": {"custodian": another_custodian_key()},
        "a previous manifest that does not exist": {"prev_manifest_hash": bytes([1]) * 32},
        "epoch 2 first": {"epoch": 2},
        "the GP in it too": {"members": [member_key(lead.user, "lead"), member_key(gp.user, "member")]},
        "nobody in it": {"members": []},
        "the lead as a plain member": {"members": [member_key(lead.user, "member")]},
        "a manifest from last year": {"created_ms": now_ms() - 365 * 86400 * 1000},
        "a first post that is not the details": {"details_kind": "update"},
    }.get(case, {})
    body = lead_client.workspace_payload(DETAILS, **fields)
    if case == "signed by someone else":
        body = _resign(body, Client(gp, custodian).identity)
    if case == "another workspace's manifest":
        body["id"] = str(uuid.uuid4())
        body.pop("details")
    with pytest.raises(error) as refused:
        services.workspace_create(
            lead=lead.user, workspace_id=uuid.UUID(body["id"]), epoch=EpochBundle.parse(body["epoch"]),
            details=envelope(body["details"]) if "details" in body else None)
    assert reason in " ".join(refused.value.messages)
    assert isinstance(refused.value, Conflict) == (error is Conflict)
    assert not Workspace.objects.filter(public_id=body["id"]).exists()
    assert audit_since(head) == []
    # Nothing was used up: the next workspace takes the next reference.
    prefix, number = reference_before.rsplit("-", 1)
    assert lead_client.create_workspace().reference == f"{prefix}-{int(number) + 1:04d}"


def test_it_refuses_a_workspace_id_that_is_taken(lead, custodian):
    lead_client = Client(lead, custodian)
    existing = lead_client.create_workspace()
    body = lead_client.workspace_payload(workspace_id=existing.public_id)
    with pytest.raises(Conflict, match="already exists"):
        services.workspace_create(lead=lead.user, workspace_id=existing.public_id,
                                  epoch=EpochBundle.parse(body["epoch"]))


def test_it_refuses_a_workspace_without_a_custodian_key(lead, custodian):
    from messaging.models import CustodianKey

    body = Client(lead, custodian).workspace_payload()
    CustodianKey.objects.update(is_current=False)
    with pytest.raises(Conflict, match="no custodian key is configured"):
        services.workspace_create(lead=lead.user, workspace_id=uuid.UUID(body["id"]),
                                  epoch=EpochBundle.parse(body["epoch"]))


# --- membership_invite, accept, decline -----------------------------------------------------------------


def test_it_invites_audits_and_tells_the_invitee(lead, gp, custodian, capture_events,
                                                 django_capture_on_commit_callbacks):
    lead_client = Client(lead, custodian)
    workspace = lead_client.create_workspace(DETAILS)
    head = audit_head()
    with django_capture_on_commit_callbacks(execute=True):
        invited = lead_client.invite(workspace, gp.user)
    assert (invited.state, invited.role, invited.invited_by_id) == ("invited", "member", lead.user.pk)
    # Stored with what it was signed over: the epoch current when invited and its single-use nonce.
    assert invited.invite_epoch == 1 and len(bytes(invited.invite_nonce)) == crypto.INVITE_NONCE_BYTES
    assert crypto.verify_detached(
        lead_client.identity.sign_public,
        crypto.invite_statement(workspace.public_id, gp.user.public_id, Client(gp, custodian).identity.fingerprint(),
                                "member", 1, bytes(invited.invite_nonce)),
        bytes(invited.invite_signature))
    [event] = audit_since(head)
    assert (event.kind, event.actor_id, event.data) == (
        "membership.invited", lead.user.pk, {"member": str(gp.user.public_id), "role": "member"})
    assert capture_events == [
        (f"user.{gp.user.pk}", {"type": "membership.invited", "workspace": str(workspace.public_id),
                                "reference": workspace.reference}),
        (f"user.{gp.user.pk}", {"type": "notification.created", "unread": 1})]
    # Invited: sees that the workspace exists, nothing of its content.
    detail = selectors.workspace_detail(professional=gp.user, workspace=workspace)
    assert detail["my_state"] == "invited" and "epochs" not in detail and "members" not in detail
    with pytest.raises(Http404):
        selectors.post_list(professional=gp.user, workspace=workspace)


def _invite_signed(lead_client, workspace, other, *, signer=None, role="member", signed_role=None, key_of=None,
                   epoch=None, nonce=None) -> tuple[bytes, bytes]:
    """(signature, nonce) of an invitation; the keywords make it wrong."""
    workspace.refresh_from_db()
    signer = signer or lead_client.identity
    fp = (key_of or member_key(other, role)).fingerprint
    nonce = nonce or os.urandom(crypto.INVITE_NONCE_BYTES)
    statement = crypto.invite_statement(workspace.public_id, other.public_id, fp, signed_role or role,
                                        workspace.current_epoch if epoch is None else epoch, nonce)
    return signer.sign(statement), nonce


def invite_with(lead_client, workspace, other, signed: tuple[bytes, bytes], role="member"):
    signature, nonce = signed
    return services.membership_invite(lead=lead_client.user, workspace=workspace, professional=other, role=role,
                                      invite_signature=signature, invite_nonce=nonce)


@pytest.mark.parametrize("case", ["signed by the invitee", "signed for another role", "signed for another key",
                                  "signed for another workspace", "signed for the next epoch",
                                  "signed for an earlier epoch", "signed for another nonce", "a version 1 signature",
                                  "zeros"])
def test_it_refuses_an_invitation_whose_signature_does_not_verify(lead, gp, outsider, custodian, case):
    lead_client = Client(lead, custodian)
    workspace = lead_client.create_workspace()
    lead_client.rotate(workspace)  # epoch 2: an invitation now names epoch 2
    nonce = os.urandom(crypto.INVITE_NONCE_BYTES)
    if case == "signed by the invitee":
        signature, _ = _invite_signed(lead_client, workspace, gp.user, signer=Client(gp, custodian).identity,
                                      nonce=nonce)
    elif case == "signed for another role":
        signature, _ = _invite_signed(lead_client, workspace, gp.user, signed_role="oversight", nonce=nonce)
    elif case == "signed for another key":
        signature, _ = _invite_signed(lead_client, workspace, gp.user, key_of=member_key(outsider.user, "member"),
                                      nonce=nonce)
    elif case == "signed for another workspace":
        signature, _ = _invite_signed(lead_client, lead_client.create_workspace(), gp.user, epoch=2, nonce=nonce)
    elif case == "signed for the next epoch":
        signature, _ = _invite_signed(lead_client, workspace, gp.user, epoch=3, nonce=nonce)
    elif case == "signed for an earlier epoch":  # made before the last new epoch: signed again, or not at all
        signature, _ = _invite_signed(lead_client, workspace, gp.user, epoch=1, nonce=nonce)
    elif case == "signed for another nonce":
        signature, _ = _invite_signed(lead_client, workspace, gp.user)
    elif case == "a version 1 signature":  # the old layout: no epoch, no nonce
        signature = lead_client.identity.sign(b"tac.invite.v1\x00" + workspace.public_id.bytes + gp.user.public_id.bytes
                                              + member_key(gp.user, "member").fingerprint + bytes([2]))
    else:
        signature = bytes(64)
    head = audit_head()
    with pytest.raises(ValidationError, match="the invitation signature does not verify"):
        invite_with(lead_client, workspace, gp.user, (signature, nonce))
    assert not Membership.objects.filter(professional=gp.user).exists()
    assert audit_since(head) == []


def test_it_refuses_an_invitation_nonce_used_before(lead, gp, outsider, custodian):
    """Each invitation is signed once: its nonce cannot be used again, for the same professional or another."""
    lead_client = Client(lead, custodian)
    workspace = lead_client.create_workspace()
    first = _invite_signed(lead_client, workspace, gp.user)
    invite_with(lead_client, workspace, gp.user, first)
    services.membership_respond(professional=gp.user, workspace=workspace, accept=False)
    head = audit_head()
    with pytest.raises(Conflict, match="this invitation nonce was used before"):
        invite_with(lead_client, workspace, outsider.user, _invite_signed(lead_client, workspace, outsider.user,
                                                                          nonce=first[1]))
    with pytest.raises(Conflict, match="this invitation nonce was used before"):
        invite_with(lead_client, workspace, gp.user, first)  # the declined invitation, sent again
    with pytest.raises(ValidationError, match="invite_nonce must be 16 bytes"):
        invite_with(lead_client, workspace, outsider.user, (bytes(64), bytes(8)))
    assert audit_since(head) == [] and not Membership.objects.filter(professional=outsider.user).exists()
    again = invite_with(lead_client, workspace, gp.user, _invite_signed(lead_client, workspace, gp.user))
    assert again.state == "invited" and bytes(again.invite_nonce) != first[1]


def test_it_refuses_a_duplicate_invitation(pair, outsider):
    workspace, lead_client, gp_client = pair
    lead_client.invite(workspace, outsider.user)
    with pytest.raises(Conflict, match="already invited to or a member"):
        lead_client.invite(workspace, outsider.user)
    with pytest.raises(Conflict, match="already invited to or a member"):
        lead_client.invite(workspace, gp_client.user)  # already active
    assert Membership.objects.filter(workspace=workspace, professional=outsider.user).count() == 1


@pytest.mark.parametrize("role", ["lead", "admin", ""])
def test_it_invites_only_as_member_or_oversight(pair, outsider, role):
    workspace, lead_client, _ = pair
    with pytest.raises(ValidationError, match="invite as member or oversight"):
        services.membership_invite(lead=lead_client.user, workspace=workspace, professional=outsider.user,
                                   invite_signature=bytes(64), invite_nonce=bytes(16), role=role)


def test_it_refuses_to_invite_an_offboarded_account(pair, outsider, make_persona):
    workspace, lead_client, _ = pair
    other = make_persona("teacher2@school.example", "school")
    signed = _invite_signed(lead_client, workspace, other.user)
    professional_offboard(admin=lead_client.user, professional=other.user)
    other.user.refresh_from_db()
    with pytest.raises(ValidationError, match="not active"):
        invite_with(lead_client, workspace, other.user, signed)


def test_an_offboarded_account_cannot_open_a_workspace(gp, make_persona, custodian):
    locum = make_persona("locum@gp.example", "gp", full_name="Dr Lou Locum", job_title="GP")
    locum_client = Client(locum, custodian)
    professional_offboard(admin=gp.user, professional=locum.user)
    locum.user.refresh_from_db()
    with pytest.raises(PermissionDenied, match="offboarded"):
        locum_client.create_workspace(DETAILS)
    assert not Workspace.objects.exists()


def test_it_accepts_an_invitation_and_tells_the_lead(lead, gp, custodian, capture_events,
                                                     django_capture_on_commit_callbacks):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace(DETAILS)
    lead_client.invite(workspace, gp.user)
    head = audit_head()
    with django_capture_on_commit_callbacks(execute=True):
        accepted = services.membership_respond(professional=gp.user, workspace=workspace, accept=True)
    assert accepted.state == "accepted"
    assert kinds(audit_since(head)) == ["membership.accepted"]
    assert capture_events == [(f"user.{lead.user.pk}", {
        "type": "membership.accepted", "workspace": str(workspace.public_id), "member": str(gp.user.public_id)})]
    # Accepted is not yet a member: no key, no posting, no reading, until the lead's client rotates.
    with pytest.raises(PermissionDenied):
        submit(gp, workspace, stray_key_payload(gp_client, workspace))
    with pytest.raises(Http404):
        selectors.post_list(professional=gp.user, workspace=workspace)
    assert selectors.rotation_due(workspace)
    with pytest.raises(Conflict, match="no open invitation"):
        services.membership_respond(professional=gp.user, workspace=workspace, accept=False)


def test_it_declines_an_invitation_tells_the_team_and_allows_a_new_one_later(
        lead, gp, custodian, capture_events, django_capture_on_commit_callbacks):
    lead_client = Client(lead, custodian)
    workspace = lead_client.create_workspace()
    lead_client.invite(workspace, gp.user)
    head = audit_head()
    with django_capture_on_commit_callbacks(execute=True):
        declined = services.membership_respond(professional=gp.user, workspace=workspace, accept=False)
    assert declined.state == "declined" and declined.left_at is not None
    assert kinds(audit_since(head)) == ["membership.declined"]
    # The lead's open page (subscribed to the workspace) refreshes its team list.
    assert capture_events == [(f"workspace.{workspace.pk}", {
        "type": "membership.changed", "workspace": str(workspace.public_id), "member": str(gp.user.public_id),
        "state": "declined"})]
    with pytest.raises(Conflict, match="no open invitation"):
        services.membership_respond(professional=gp.user, workspace=workspace, accept=True)
    again = lead_client.invite(workspace, gp.user)
    assert again.pk != declined.pk and again.state == "invited"


def test_it_refuses_an_answer_without_an_invitation(pair, outsider):
    workspace, _, gp_client = pair
    for persona_user in (outsider.user, gp_client.user):
        with pytest.raises(Conflict, match="no open invitation"):
            services.membership_respond(professional=persona_user, workspace=workspace, accept=True)


# --- epoch_rotate: admitting, removing, leaving, handing over -------------------------------------------


def test_it_admits_accepted_members_in_a_new_epoch(lead, gp, outsider, custodian, capture_events,
                                                   django_capture_on_commit_callbacks):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace(DETAILS)
    lead_client.invite(workspace, gp.user)
    lead_client.invite(workspace, outsider.user)  # invited, not accepted: not admitted
    services.membership_respond(professional=gp.user, workspace=workspace, accept=True)
    head = audit_head()
    with django_capture_on_commit_callbacks(execute=True):
        epoch = lead_client.rotate(workspace)
    assert epoch.number == 2
    m = membership(workspace, gp)
    assert (m.state, m.first_epoch, m.history_shared) == ("active", 2, False) and m.joined_at is not None
    assert membership(workspace, outsider).state == "invited"
    assert Epoch.objects.get(workspace=workspace, number=1).retired_at is not None
    assert set(EpochWrap.objects.filter(epoch=epoch, recipient__isnull=False).values_list("recipient_id", flat=True)) \
        == {lead.user.pk, gp.user.pk}
    [event] = audit_since(head)
    assert (event.kind, event.data) == ("epoch.created", {"epoch": 2, "members": 2,
                                                          "admitted": [str(gp.user.public_id)],
                                                          "signed_as": "lead"})
    assert capture_events == [
        (f"workspace.{workspace.pk}", {"type": "epoch.created", "workspace": str(workspace.public_id), "epoch": 2}),
        # The newcomer is not subscribed to the workspace yet: told on their own group.
        (f"user.{gp.user.pk}", {"type": "keys.added", "workspace": str(workspace.public_id)}),
    ]
    # The GP's client checks the chain of manifests and opens the new epoch key (and no earlier one).
    keys = gp_client.keys(workspace)
    assert set(keys.epoch_keys) == {2}
    assert keys.epoch_keys[2] == lead_client.keys(workspace).epoch_keys[2]


def test_it_lets_the_lead_leave_out_an_accepted_member_it_cannot_verify(lead, gp, custodian):
    """The lead's device admits only invitations it can verify; an epoch without such a member is
    accepted and they stay waiting, with no key."""
    lead_client = Client(lead, custodian)
    workspace = lead_client.create_workspace()
    lead_client.invite(workspace, gp.user)
    services.membership_respond(professional=gp.user, workspace=workspace, accept=True)
    bundle = lead_client.next_epoch_bundle(workspace, include_accepted=False)
    head = audit_head()
    services.epoch_rotate(lead=lead.user, workspace=workspace, epoch=EpochBundle.parse(bundle))
    assert Membership.objects.get(workspace=workspace, professional=gp.user).state == Membership.State.ACCEPTED
    assert not EpochWrap.objects.filter(epoch__workspace=workspace, recipient=gp.user).exists()
    [event] = audit_since(head)
    assert event.data == {"epoch": 2, "members": 1, "admitted": [], "signed_as": "lead"}  # the manifest's members, not the waiting


def test_it_refuses_an_epoch_that_slips_in_someone_who_was_only_invited(lead, gp, custodian):
    lead_client = Client(lead, custodian)
    workspace = lead_client.create_workspace()
    lead_client.invite(workspace, gp.user)
    bundle = lead_client.next_epoch_bundle(workspace)
    parsed = EpochBundle.parse(bundle)
    assert parsed.manifest.members == (crypto.ManifestMember(lead.user.public_id, lead_client.identity.sign_public,
                                                             lead_client.identity.box_public, "lead"),)
    forged, _ = epoch_bundle(lead=lead_client.identity, workspace_id=workspace.public_id, epoch=2,
                             prev_manifest_hash=lead_client.keys(workspace).manifest_hashes[1],
                             members=[member_key(lead.user, "lead"), member_key(gp.user, "member")],
                             custodian=lead_client.custodian_key)
    with pytest.raises(Conflict, match=f"not members \\['{gp.user.public_id}'\\]"):
        services.epoch_rotate(lead=lead.user, workspace=workspace, epoch=EpochBundle.parse(forged))
    assert membership(workspace, gp).state == "invited"


def test_it_refuses_a_stale_epoch_bundle(pair):
    workspace, lead_client, _ = pair
    stale = lead_client.next_epoch_bundle(workspace)
    lead_client.rotate(workspace)
    with pytest.raises(Conflict, match="the next epoch is 4, not 3"):
        services.epoch_rotate(lead=lead_client.user, workspace=workspace, epoch=EpochBundle.parse(stale))


def test_it_accepts_an_epoch_listing_an_active_members_earlier_key(pair):
    """After a password reset the lead's client keeps sealing to the key it trusts (the manifest's) until a
    colleague confirms the new one: the epoch is stored, wrapped for the earlier key, and the member still
    needs re-keying."""
    workspace, lead_client, gp_client = pair
    earlier = gp_client.user.current_identity_key()
    bundle = lead_client.next_epoch_bundle(workspace)  # lists the GP's key as the manifest does
    password_reset(gp_client.persona, "a new passphrase after forgetting")
    gp_client.refresh_identity()
    epoch = services.epoch_rotate(lead=lead_client.user, workspace=workspace, epoch=EpochBundle.parse(bundle))
    assert EpochWrap.objects.get(epoch=epoch, recipient=gp_client.user).recipient_key == earlier
    assert 3 not in gp_client.keys(workspace).epoch_keys
    assert [(m["member"], m["epochs"]) for m in selectors.members_needing_rekey(
        professional=lead_client.user, workspace=workspace)] == [(str(gp_client.user.public_id), [2, 3])]
    assert post(lead_client, workspace, "update").post.epoch.number == 3


def test_it_refuses_an_earlier_key_for_an_accepted_newcomer(pair, manager, custodian):
    """A newcomer joins with the key they have now (the one their invitation was signed for), never one
    they have replaced; and nobody joins under a key that is not theirs at all."""
    workspace, lead_client, gp_client = pair
    manager_client = Client(manager, custodian)
    lead_client.invite(workspace, manager.user)
    services.membership_respond(professional=manager.user, workspace=workspace, accept=True)
    bundle = lead_client.next_epoch_bundle(workspace)  # lists the manager's key as it is now
    password_reset(manager_client.persona, "a new passphrase after forgetting")
    with pytest.raises(Conflict, match=f"member {manager.user.public_id}'s key in the manifest is not a key of theirs"):
        services.epoch_rotate(lead=lead_client.user, workspace=workspace, epoch=EpochBundle.parse(bundle))
    assert membership(workspace, manager).state == "accepted"
    managers = member_key(manager.user, "member")
    not_theirs = MemberKey(gp_client.user.public_id, managers.sign_public, managers.box_public, "member")
    forged, _ = epoch_bundle(lead=lead_client.identity, workspace_id=workspace.public_id, epoch=3,
                             prev_manifest_hash=lead_client.keys(workspace).manifest_hashes[2],
                             members=[member_key(lead_client.user, "lead"), not_theirs],
                             custodian=lead_client.custodian_key)
    with pytest.raises(Conflict, match=f"member {gp_client.user.public_id}'s key in the manifest is not a key of theirs"):
        services.epoch_rotate(lead=lead_client.user, workspace=workspace, epoch=EpochBundle.parse(forged))
    workspace.refresh_from_db()
    assert workspace.current_epoch == 2


def test_it_removes_a_member_at_once_with_a_new_epoch_they_cannot_open(pair, capture_events,
                                                                       django_capture_on_commit_callbacks):
    workspace, lead_client, gp_client = pair
    post(gp_client, workspace, "update")
    kept = gp_client.keys(workspace)  # what the GP's device still holds
    head = audit_head()
    with django_capture_on_commit_callbacks(execute=True):
        epoch = lead_client.rotate(workspace, remove=gp_client.user)
    m = membership(workspace, gp_client.persona)
    assert m.state == "removed" and m.left_at is not None
    assert kinds(audit_since(head)) == ["membership.removed", "epoch.created"]
    assert audit_since(head)[0].data == {"member": str(gp_client.user.public_id), "epoch": 3}
    assert capture_events == [
        (f"user.{gp_client.user.pk}", {"type": "membership.ended", "workspace": str(workspace.public_id),
                                       "reason": "removed"}),
        (f"workspace.{workspace.pk}", {"type": "epoch.created", "workspace": str(workspace.public_id), "epoch": 3}),
    ]
    # Not one wrap of the new epoch (the custodian's included) opens with the removed member's key.
    wraps = list(EpochWrap.objects.filter(epoch=epoch))
    assert len(wraps) == 2
    for wrap in wraps:
        with pytest.raises(crypto.DecryptionError):
            crypto.epoch_key_unwrap(bytes(wrap.sealed), gp_client.identity, workspace.public_id, 3)
    assert 3 not in kept.epoch_keys
    # The server refuses their posts (even under the key they kept) and their reads.
    with pytest.raises(PermissionDenied):
        submit(gp_client.persona, workspace, gp_client.seal(workspace, "update", {"text": "x"}, epoch=2, keys=kept))
    for read in (selectors.post_list, selectors.workspace_detail, selectors.author_keys):
        with pytest.raises(Http404):
            read(professional=gp_client.user, workspace=workspace)
    # The others carry on in the new epoch.
    assert post(lead_client, workspace, "update").post.epoch.number == 3


def test_it_refuses_an_epoch_that_still_wraps_for_the_member_being_removed(pair):
    workspace, lead_client, gp_client = pair
    bundle = lead_client.next_epoch_bundle(workspace)  # still lists the GP
    with pytest.raises(Conflict, match="not members"):
        services.epoch_rotate(lead=lead_client.user, workspace=workspace, epoch=EpochBundle.parse(bundle),
                              remove=gp_client.user)
    assert membership(workspace, gp_client.persona).state == "active"


def test_it_refuses_to_remove_the_lead_or_a_stranger(pair, outsider):
    workspace, lead_client, _ = pair
    with pytest.raises(ValidationError, match="cannot remove themselves"):
        lead_client.rotate(workspace, remove=lead_client.user)
    with pytest.raises(ValidationError, match="not a member"):
        lead_client.rotate(workspace, remove=outsider.user)


def test_it_asks_for_a_new_epoch_after_a_member_leaves(pair, capture_events, django_capture_on_commit_callbacks):
    workspace, lead_client, gp_client = pair
    kept = gp_client.keys(workspace)
    head = audit_head()
    with django_capture_on_commit_callbacks(execute=True):
        services.membership_leave(professional=gp_client.user, workspace=workspace)
    workspace.refresh_from_db()
    assert workspace.rotation_required and selectors.rotation_due(workspace)
    assert membership(workspace, gp_client.persona).state == "left"
    assert kinds(audit_since(head)) == ["membership.left"]
    assert capture_events == [
        (f"user.{gp_client.user.pk}", {"type": "membership.ended", "workspace": str(workspace.public_id),
                                       "reason": "left"}),
        (f"workspace.{workspace.pk}", {"type": "membership.changed", "workspace": str(workspace.public_id),
                                       "member": str(gp_client.user.public_id), "state": "left"}),
    ]
    # Nobody posts until the lead's client renews the keys.
    with pytest.raises(Conflict, match="a member has left: the lead professional's device must renew"):
        post(lead_client, workspace, "update")
    with pytest.raises(PermissionDenied):
        submit(gp_client.persona, workspace, gp_client.seal(workspace, "update", {"text": "bye"}, keys=kept))
    lead_client.rotate(workspace)
    workspace.refresh_from_db()
    assert not workspace.rotation_required
    assert post(lead_client, workspace, "update").post.epoch.number == 3
    assert not EpochWrap.objects.filter(epoch__number=3, epoch__workspace=workspace, recipient=gp_client.user).exists()


def test_it_does_not_let_the_lead_leave(pair):
    workspace, lead_client, _ = pair
    with pytest.raises(ValidationError, match="hand the lead role over before leaving"):
        services.membership_leave(professional=lead_client.user, workspace=workspace)


def test_it_hands_the_lead_role_over_in_a_signed_epoch(pair):
    workspace, lead_client, gp_client = pair
    head = audit_head()
    lead_client.rotate(workspace, new_lead=gp_client.user)
    workspace.refresh_from_db()
    assert workspace.lead_id == gp_client.user.pk
    assert (membership(workspace, gp_client.persona).role, membership(workspace, lead_client.persona).role) == (
        "lead", "member")
    assert kinds(audit_since(head)) == ["workspace.lead_handed_over", "epoch.created"]
    # The new lead signs the next epoch; the old one no longer can.
    with pytest.raises(PermissionDenied):
        lead_client.rotate(workspace)
    epoch = gp_client.rotate(workspace)
    assert (epoch.number, epoch.signed_by_id) == (4, gp_client.user.pk)
    # Both clients accept the chain: epoch 3 signed by the old lead naming the new one, epoch 4 by the new.
    for c in (lead_client, gp_client):
        keys = c.keys(workspace)
        assert keys.lead(3) == keys.lead(4) == gp_client.user.public_id
    assert post(lead_client, workspace, "update").post.epoch.number == 4
    # The new lead invites; the old lead cannot.
    with pytest.raises(PermissionDenied):
        lead_client.invite(workspace, lead_client.user)


def test_it_refuses_a_handover_manifest_that_names_the_wrong_lead(pair):
    workspace, lead_client, gp_client = pair
    bundle = lead_client.next_epoch_bundle(workspace)  # still names the outgoing lead as lead
    with pytest.raises(ValidationError, match="name exactly the lead professional as lead"):
        services.epoch_rotate(lead=lead_client.user, workspace=workspace, epoch=EpochBundle.parse(bundle),
                              new_lead=gp_client.user)
    workspace.refresh_from_db()
    assert workspace.lead_id == lead_client.user.pk


def test_it_hands_over_only_to_an_active_member(pair, outsider):
    workspace, lead_client, _ = pair
    with pytest.raises(ValidationError, match="must be an active member"):
        lead_client.rotate(workspace, new_lead=outsider.user)


# --- post_create ----------------------------------------------------------------------------------------


def test_it_stores_a_post_audits_it_without_content_and_fans_it_out(pair, capture_events,
                                                                    django_capture_on_commit_callbacks):
    workspace, lead_client, gp_client = pair
    payload = gp_client.seal(workspace, "concern", {"category": "neglect", "detail": "Bruise on arm"}, rag="amber")
    head = audit_head()
    with django_capture_on_commit_callbacks(execute=True):
        result = submit(gp_client.persona, workspace, payload)
    stored = result.post
    assert result.created and stored.seq == 2 and (stored.kind, stored.rag, stored.epoch.number) == (
        "concern", "amber", 2)
    assert bytes(stored.header) == base64.b64decode(payload["header"])
    assert bytes(stored.ciphertext) == base64.b64decode(payload["ciphertext"])
    [event] = audit_since(head)
    assert (event.kind, event.actor_id, event.data) == (
        "post.created", gp_client.user.pk, {"seq": 2, "post": payload["post_id"], "kind": "concern"})
    assert "Bruise" not in json.dumps(event.data) and payload["ciphertext"] not in json.dumps(event.data)
    [(group, message)] = capture_events
    assert group == f"workspace.{workspace.pk}"
    workspace.refresh_from_db()
    assert message == {"type": "post.created", "workspace_pk": workspace.pk, "roster": workspace.roster_version,
                       "post": payloads.post_payload(stored)}
    assert {k: message["post"][k] for k in ("header", "nonce", "ciphertext", "signature")} == {
        k: payload[k] for k in ("header", "nonce", "ciphertext", "signature")}
    # Every reader verifies and opens it; it is unread for the others, never for its author.
    [opened] = lead_client.read(workspace, after=1)
    assert opened.body == {"category": "neglect", "detail": "Bruise on arm"} and opened.key_matches_manifest
    unread = {who: [w["unread"] for w in selectors.workspace_list(professional=who.user)] for who in (
        gp_client, lead_client)}
    assert unread == {gp_client: [0], lead_client: [1]}
    workspace.refresh_from_db()
    assert (workspace.last_seq, workspace.current_rag) == (2, "amber")


def test_it_takes_the_same_post_twice_as_one(pair, capture_events, django_capture_on_commit_callbacks):
    workspace, _, gp_client = pair
    payload = gp_client.seal(workspace, "update", {"text": "retry me"})
    with django_capture_on_commit_callbacks(execute=True):
        first = submit(gp_client.persona, workspace, payload)
    head = audit_head()
    with django_capture_on_commit_callbacks(execute=True):
        again = submit(gp_client.persona, workspace, payload)
    assert (again.created, again.post.pk, again.post.seq) == (False, first.post.pk, first.post.seq)
    assert audit_since(head) == []
    assert [m["type"] for _, m in capture_events] == ["post.created"]
    assert Post.objects.filter(post_id=payload["post_id"]).count() == 1
    workspace.refresh_from_db()
    assert workspace.last_seq == first.post.seq


def test_it_answers_a_retry_as_stored_even_after_the_epoch_has_moved_on(pair):
    """The answer to the first send was lost; meanwhile the lead renewed the keys. The retry is the same
    post, already stored: it is answered as such, not refused as being in an old epoch."""
    workspace, lead_client, gp_client = pair
    payload = gp_client.seal(workspace, "update", {"text": "sent just before the new epoch"})
    first = submit(gp_client.persona, workspace, payload)
    lead_client.rotate(workspace)
    workspace.refresh_from_db()
    again = submit(gp_client.persona, workspace, payload)
    assert (again.created, again.post.pk) == (False, first.post.pk)
    with pytest.raises(Conflict, match="current key epoch"):
        submit(gp_client.persona, workspace, gp_client.seal(workspace, "update", {"text": "new"}, epoch=2))


def test_it_refuses_another_post_under_a_used_post_id(pair):
    workspace, lead_client, gp_client = pair
    payload = gp_client.seal(workspace, "update", {"text": "first"})
    submit(gp_client.persona, workspace, payload)
    post_id = uuid.UUID(payload["post_id"])
    for author, other in [(gp_client, gp_client.seal(workspace, "update", {"text": "second"}, post_id=post_id)),
                          (lead_client, lead_client.seal(workspace, "update", {"text": "mine"}, post_id=post_id)),
                          (lead_client, payload)]:  # the same bytes, sent by someone else
        with pytest.raises(Conflict, match="this post id is already used by another post"):
            submit(author.persona, workspace, other)
    assert Post.objects.filter(post_id=post_id).count() == 1


def test_it_refuses_a_post_from_someone_who_is_not_a_member(pair, outsider, manager, custodian):
    workspace, _, _ = pair
    for persona in (outsider, manager):
        with pytest.raises(PermissionDenied, match="not a member"):
            submit(persona, workspace, stray_key_payload(Client(persona, custodian), workspace))
    assert Post.objects.filter(workspace=workspace).count() == 1


def test_it_refuses_a_post_in_a_retired_epoch(pair):
    workspace, lead_client, gp_client = pair
    lead_client.rotate(workspace)
    payload = gp_client.seal(workspace, "update", {"text": "old key"}, epoch=2)
    with pytest.raises(Conflict, match=r"posts go in the current key epoch \(3\), not 2"):
        submit(gp_client.persona, workspace, payload)


@pytest.mark.parametrize("minutes", [-11, 11, -60 * 24])
def test_it_refuses_a_post_from_a_clock_more_than_ten_minutes_off(pair, minutes):
    workspace, _, gp_client = pair
    payload = gp_client.seal(workspace, "update", {"text": "clock"}, client_time_ms=now_ms() + minutes * 60_000)
    with pytest.raises(ValidationError, match="more than 10 minutes from the server's clock") as refused:
        submit(gp_client.persona, workspace, payload)
    assert not isinstance(refused.value, Conflict)


@pytest.mark.parametrize("minutes", [-9, 9])
def test_it_accepts_a_clock_within_ten_minutes(pair, minutes):
    workspace, _, gp_client = pair
    payload = gp_client.seal(workspace, "update", {"text": "clock"}, client_time_ms=now_ms() + minutes * 60_000)
    stored = submit(gp_client.persona, workspace, payload).post
    assert abs((stored.client_time - timezone.now()) - dt.timedelta(minutes=minutes)) < dt.timedelta(seconds=30)


def test_it_refuses_a_post_signed_with_a_replaced_key(pair):
    workspace, _, gp_client = pair
    old_device = gp_client.identity
    kept = gp_client.keys(workspace)
    password_reset(gp_client.persona, "a new passphrase after forgetting")
    gp_client.identity = old_device  # a device that still holds the old keys
    payload = gp_client.seal(workspace, "update", {"text": "from the old device"}, keys=kept)
    with pytest.raises(ValidationError, match="the post header's author key is not your current key"):
        submit(gp_client.persona, workspace, payload)


def test_it_refuses_a_header_naming_a_key_that_is_not_the_authors(pair, outsider, custodian):
    workspace, _, gp_client = pair
    keys = gp_client.keys(workspace)
    header = crypto.PostHeader(
        workspace_id=workspace.public_id, epoch=2, post_id=uuid.uuid4(), author_id=gp_client.user.public_id,
        author_fingerprint=Client(outsider, custodian).identity.fingerprint(), client_time_ms=now_ms(), kind="update")
    header_bytes, nonce, ciphertext, signature = crypto.post_seal(gp_client.identity, header, b"{}", keys.epoch_keys[2])
    payload = {k: base64.b64encode(v).decode() for k, v in
               {"header": header_bytes, "nonce": nonce, "ciphertext": ciphertext, "signature": signature}.items()}
    with pytest.raises(ValidationError, match="not your current key"):
        submit(gp_client.persona, workspace, payload)


@pytest.mark.parametrize(("field", "index"), [("header", -1), ("header", 45), ("header", 111), ("nonce", 0), ("ciphertext", 0),
                                              ("ciphertext", -1), ("signature", 10)])
def test_it_refuses_a_post_with_a_flipped_byte(pair, field, index):
    workspace, _, gp_client = pair
    payload = flip(gp_client.seal(workspace, "update", {"text": "tamper with me"}), field, index)
    with pytest.raises(ValidationError, match="the post signature does not verify"):
        submit(gp_client.persona, workspace, payload)
    assert Post.objects.filter(workspace=workspace).count() == 1


def test_it_refuses_a_post_another_member_re_signed(pair):
    """The GP signs the lead's exact header bytes (which name the lead as author) with the GP's own key."""
    workspace, lead_client, gp_client = pair
    original = lead_client.seal(workspace, "update", {"text": "the lead wrote this"})
    raw = {k: base64.b64decode(original[k]) for k in ("header", "nonce", "ciphertext")}
    forged_signature = gp_client.identity.sign(crypto.post_signed_message(raw["header"], raw["nonce"],
                                                                          raw["ciphertext"]))
    forged = {**original, "signature": base64.b64encode(forged_signature).decode()}
    with pytest.raises(ValidationError, match="the post header names another author"):
        submit(gp_client.persona, workspace, forged)
    # Nor does it pass as the lead's: the signature does not verify with the lead's key.
    with pytest.raises(ValidationError, match="the post signature does not verify"):
        submit(lead_client.persona, workspace, forged)
    assert not Post.objects.filter(post_id=original["post_id"]).exists()


def test_it_refuses_a_header_for_another_workspace(pair, custodian):
    workspace, lead_client, _ = pair
    other = lead_client.create_workspace()
    payload = lead_client.seal(other, "update", {"text": "wrong place"})
    with pytest.raises(ValidationError, match="names another workspace"):
        submit(lead_client.persona, workspace, payload)


def test_it_refuses_a_post_replayed_into_another_workspace_of_its_author(pair):
    """The same bytes sent to a second workspace the author is in: refused, never answered as a stored
    post (the duplicate check includes the workspace)."""
    workspace, lead_client, gp_client = pair
    other = lead_client.create_workspace()
    join(lead_client, other, gp_client)
    payload = gp_client.seal(workspace, "update", {"text": "for the first workspace"})
    submit(gp_client.persona, workspace, payload)
    with pytest.raises(Conflict, match="this post id is already used by another post"):
        submit(gp_client.persona, other, payload)
    assert not Post.objects.filter(workspace=other, author=gp_client.user).exists()


@pytest.mark.parametrize("case", ["after the newest post", "a number without a hash", "a hash without a number"])
def test_it_refuses_a_post_that_follows_a_post_the_workspace_does_not_have(pair, case):
    workspace, _, gp_client = pair
    seq, post_hash = newest(workspace)
    prev = {"after the newest post": (seq + 1, post_hash), "a number without a hash": (seq, crypto.ZERO_HASH),
            "a hash without a number": (0, post_hash)}[case]
    payload = gp_client.seal(workspace, "update", {"text": "from the future"}, prev=prev)
    with pytest.raises(ValidationError, match=f"the post says it follows #{prev[0]}, which is not a post of this"):
        submit(gp_client.persona, workspace, payload)
    assert Post.objects.filter(workspace=workspace).count() == seq


def test_it_takes_a_post_that_follows_an_older_post(pair):
    """Two members writing at once each name the newest post they saw: readers, not the server, judge it."""
    workspace, lead_client, gp_client = pair
    seen = newest(workspace)
    post(lead_client, workspace, "update")
    assert post(gp_client, workspace, "update", prev=seen).post.seq == seen[0] + 2
    assert post(gp_client, workspace, "update", prev=None).created  # a client that has seen nothing


@pytest.mark.parametrize(("fields", "reason"), [
    ({"client_time_ms": 2**63 - 1}, "the post header's time is out of range"),
    ({"client_time_ms": 2**53}, "the post header's time is out of range"),
    ({"prev": (2**53, bytes([1]) * 32)}, "the post header's previous sequence number is out of range"),
])
def test_it_refuses_a_header_number_beyond_a_javascript_number(pair, fields, reason):
    workspace, _, gp_client = pair
    payload = gp_client.seal(workspace, "update", {"text": "far away"}, **fields)
    with pytest.raises(ValidationError, match=reason):
        envelope(payload)


@pytest.mark.parametrize("due_day", [checks.MAX_DUE_DAY + 1, 2**32 - 1])
def test_it_refuses_a_due_date_after_the_year_9999(pair, due_day):
    workspace, lead_client, gp_client = pair
    payload = sealed_with_header(lead_client, workspace, "action", {"title": "Some day"},
                                 owner_id=gp_client.user.public_id, due_day=due_day, status="open")
    with pytest.raises(ValidationError, match="the action's due date is after the year 9999"):
        submit(lead_client.persona, workspace, payload)


def _due_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def test_it_takes_a_new_actions_due_date_from_today_to_two_years_ahead(pair):
    """Issue 9: 2020-01-01 and 9999-12-31 were accepted at creation."""
    workspace, lead_client, gp_client = pair
    today = timezone.localdate()
    limit = checks.years_after(today, 2)

    def action(day: dt.date):
        payload = sealed_with_header(lead_client, workspace, "action", {"title": f"Due {day}"},
                                     owner_id=gp_client.user.public_id, due_day=_due_day(day), status="open")
        return submit(lead_client.persona, workspace, payload)

    for day, reason in ((today - dt.timedelta(days=1), "is in the past: choose today or later"),
                        (dt.date(2020, 1, 1), "is in the past"),
                        (limit + dt.timedelta(days=1), "is more than 2 years ahead"),
                        (dt.date(9999, 12, 31), "is more than 2 years ahead")):
        with pytest.raises(ValidationError, match=reason):
            action(day)
    assert action(today).post.due_date == today
    assert action(limit).post.due_date == limit
    assert Post.objects.filter(workspace=workspace, kind="action").count() == 2


def test_it_counts_the_due_date_from_the_day_the_action_was_signed_just_before_midnight(pair, monkeypatch):
    workspace, lead_client, gp_client = pair
    signed = timezone.now()
    monkeypatch.setattr(timezone, "localdate", lambda value=None: (
        timezone.localtime(value).date() if value is not None else (timezone.localtime(signed) + dt.timedelta(days=1)).date()))
    yesterday_by_the_server = timezone.localtime(signed).date()
    payload = sealed_with_header(lead_client, workspace, "action", {"title": "Today, by my clock"},
                                 owner_id=gp_client.user.public_id, due_day=_due_day(yesterday_by_the_server),
                                 status="open", client_time_ms=int(signed.timestamp() * 1000))
    assert submit(lead_client.persona, workspace, payload).post.due_date == yesterday_by_the_server


def test_it_wants_a_rag_on_a_concern_and_only_there(pair):
    workspace, lead_client, _ = pair
    with pytest.raises(ValidationError, match="a concern needs a RAG rating"):
        post(lead_client, workspace, "concern")
    for kind in ("update", "decision"):
        with pytest.raises(ValidationError, match="only concerns and rating changes carry a RAG rating"):
            post(lead_client, workspace, kind, rag="red")
    assert post(lead_client, workspace, "concern", rag="green").post.rag == "green"


def test_it_wants_an_action_owned_by_a_member_and_stores_its_due_date(pair, outsider):
    workspace, lead_client, gp_client = pair
    with pytest.raises(ValidationError, match="an action needs an owner who is a member"):
        post(lead_client, workspace, "action")
    with pytest.raises(ValidationError, match="an action needs an owner who is a member"):
        post(lead_client, workspace, "action", owner=outsider.user.public_id)
    with pytest.raises(ValidationError, match="a new action is open"):
        post(lead_client, workspace, "action", owner=gp_client.user.public_id, status="done")
    with pytest.raises(ValidationError, match="only actions have an owner and a due date"):
        post(lead_client, workspace, "update", owner=gp_client.user.public_id)
    with pytest.raises(ValidationError, match="only actions have an owner and a due date"):
        post(lead_client, workspace, "update", due=due(2))
    action = post(lead_client, workspace, "action", {"title": "Home visit"}, owner=gp_client.user.public_id,
                  due=due(3)).post
    assert (action.owner_id, action.due_date, action.status) == (gp_client.user.pk, due(3), "open")
    undated = post(lead_client, workspace, "action", owner=lead_client.user.public_id).post
    assert undated.due_date is None


def test_it_refuses_an_action_for_a_removed_owner(pair):
    workspace, lead_client, gp_client = pair
    lead_client.rotate(workspace, remove=gp_client.user)
    with pytest.raises(ValidationError, match="an owner who is a member"):
        post(lead_client, workspace, "action", owner=gp_client.user.public_id)


def test_it_moves_an_action_through_done_reopened_and_cancelled(pair):
    workspace, lead_client, gp_client = pair
    action = post(lead_client, workspace, "action", owner=gp_client.user.public_id).post
    concern = post(lead_client, workspace, "concern", rag="amber").post
    with pytest.raises(ValidationError, match="an action status targets an action"):
        post(gp_client, workspace, "action_status", target=concern.post_id, status="done")
    with pytest.raises(ValidationError, match="a action_status must target a post"):
        post(gp_client, workspace, "action_status", status="done")
    for status in ("", "open"):
        with pytest.raises(ValidationError, match="an action status is one of accepted, done, confirmed"):
            post(gp_client, workspace, "action_status", target=action.post_id, status=status)
    with pytest.raises(ValidationError, match="the target post is not in this workspace"):
        post(gp_client, workspace, "action_status", target=uuid.uuid4(), status="done")
    for status in ("done", "reopened", "cancelled"):
        stored = post(gp_client, workspace, "action_status", target=action.post_id, status=status).post
        assert (stored.status, stored.target_id) == (status, action.pk)
    with pytest.raises(ValidationError, match="only actions and action statuses carry a status"):
        post(gp_client, workspace, "acknowledgement", target=action.post_id, status="done")


def test_it_lets_only_the_owner_or_the_lead_change_an_actions_status(trio):
    workspace, lead_client, gp_client, manager_client = trio
    action = post(gp_client, workspace, "action", {"title": "Home visit"}, owner=manager_client.user.public_id).post
    # Neither the owner nor the lead: another member, and the action's author, are refused.
    lead_action = post(lead_client, workspace, "action", owner=gp_client.user.public_id).post
    for who, target in ((gp_client, action), (manager_client, lead_action)):
        with pytest.raises(PermissionDenied, match="only its owner or the lead professional can make an action done"):
            post(who, workspace, "action_status", target=target.post_id, status="done")
    assert post(manager_client, workspace, "action_status", target=action.post_id, status="done").created  # owner
    assert post(lead_client, workspace, "action_status", target=action.post_id, status="reopened").created  # lead
    assert not Post.objects.filter(kind="action_status", author=gp_client.user).exists()


def test_it_lets_only_the_author_edit_or_retract(pair):
    workspace, lead_client, gp_client = pair
    concern = post(lead_client, workspace, "concern", rag="red").post
    for kind in ("edit", "retraction"):
        with pytest.raises(PermissionDenied, match=f"only the author of a post can make its {kind}"):
            post(gp_client, workspace, kind, target=concern.post_id)
    edit = post(lead_client, workspace, "edit", {"detail": "corrected"}, target=concern.post_id).post
    with pytest.raises(ValidationError, match="a retraction targets a concern, action, update, decision or details"):
        post(lead_client, workspace, "retraction", target=edit.post_id)
    with pytest.raises(ValidationError, match="does not target another post"):
        post(lead_client, workspace, "update", target=concern.post_id)
    retraction = post(lead_client, workspace, "retraction", {"reason": "wrong child"}, target=concern.post_id).post
    assert retraction.target_id == concern.pk
    # The record stays: the retracted concern is still there for every reader.
    assert concern.post_id in {p.header.post_id for p in gp_client.read(workspace)}


def test_it_keeps_the_workspace_rag_at_the_highest_concern_not_retracted(pair):
    workspace, lead_client, gp_client = pair

    def rag():
        workspace.refresh_from_db()
        return workspace.current_rag

    assert rag() == ""
    amber = post(lead_client, workspace, "concern", rag="amber").post
    assert rag() == "amber"
    red = post(gp_client, workspace, "concern", rag="red").post
    assert rag() == "red"
    post(lead_client, workspace, "concern", rag="green")
    post(lead_client, workspace, "acknowledgement", target=red.post_id)
    assert rag() == "red"
    post(gp_client, workspace, "retraction", {"reason": "entered in error"}, target=red.post_id)
    assert rag() == "amber"
    post(lead_client, workspace, "retraction", {"reason": "resolved"}, target=amber.post_id)
    assert rag() == "green"


def test_it_refuses_a_post_while_the_epoch_is_not_wrapped_for_every_member(pair):
    workspace, lead_client, gp_client = pair
    EpochWrap.objects.filter(epoch__workspace=workspace, epoch__number=2, recipient=gp_client.user).delete()
    with pytest.raises(Conflict, match="not wrapped for every member"):
        post(lead_client, workspace, "update")
    # The lead's client renews the keys for everyone; posting works again.
    lead_client.rotate(workspace)
    assert post(lead_client, workspace, "update").post.epoch.number == 3


def test_it_checks_the_wraps_again_once_the_roster_has_changed(pair, manager, custodian):
    """The every-member check is skipped while the roster is as it was at the last post: here a newcomer
    is admitted (the roster moves) and their wrap is then lost, so the next post is refused."""
    workspace, lead_client, _ = pair
    post(lead_client, workspace, "update")
    join(lead_client, workspace, Client(manager, custodian))
    EpochWrap.objects.filter(epoch__workspace=workspace, epoch__number=3, recipient=manager.user).delete()
    with pytest.raises(Conflict, match="not wrapped for every member"):
        post(lead_client, workspace, "update")


def test_every_change_of_members_or_keys_moves_the_roster_version_and_posts_do_not(
        pair, gp, manager, make_persona, custodian):
    workspace, lead_client, gp_client = pair
    locum = make_persona("locum@gp.example", "gp", full_name="Dr Lou Locum", job_title="GP")

    def version():
        workspace.refresh_from_db()
        return workspace.roster_version

    seen = [version()]
    post(lead_client, workspace, "update")
    assert version() == seen[-1]
    join(lead_client, workspace, Client(manager, custodian), Client(locum, custodian))  # admitted
    seen.append(version())
    professional_offboard(admin=gp.user, professional=locum.user)  # offboarded
    seen.append(version())
    lead_client.rotate(workspace)  # new epoch
    seen.append(version())
    services.membership_leave(professional=gp.user, workspace=workspace)  # left
    seen.append(version())
    lead_client.rotate(workspace, remove=manager.user)  # removed
    seen.append(version())
    assert seen == sorted(set(seen)), seen


def test_it_refuses_a_post_while_the_epoch_is_not_wrapped_for_the_custodian(pair):
    workspace, lead_client, _ = pair
    EpochWrap.objects.filter(epoch__workspace=workspace, epoch__number=2, custodian_key__isnull=False).delete()
    with pytest.raises(Conflict, match="not wrapped for the custodian"):
        post(lead_client, workspace, "update")


def test_it_refuses_posts_in_a_closed_workspace(pair, capture_events, django_capture_on_commit_callbacks):
    workspace, lead_client, gp_client = pair
    with django_capture_on_commit_callbacks(execute=True):
        services.workspace_close(lead=lead_client.user, workspace=workspace, status="closed")
    assert capture_events == [(f"workspace.{workspace.pk}", {
        "type": "workspace.changed", "workspace": str(workspace.public_id), "status": "closed"})]
    with pytest.raises(Conflict, match="closed"):
        post(gp_client, workspace, "update")
    # Still readable.
    assert [p.header.kind for p in gp_client.read(workspace)] == []
    assert [p.header.kind for p in lead_client.read(workspace)] == ["details"]


# --- password reset, re-keying, history -----------------------------------------------------------------


@pytest.fixture
def trio(lead, gp, manager, custodian):
    """Lead, GP and manager (as a plain member) from epoch 2; a post in each of epochs 2 and 3."""
    lead_client, gp_client, manager_client = (Client(p, custodian) for p in (lead, gp, manager))
    workspace = lead_client.create_workspace(DETAILS)
    join(lead_client, workspace, gp_client, manager_client)
    post(gp_client, workspace, "update", {"text": "epoch two"})
    lead_client.rotate(workspace)
    post(lead_client, workspace, "update", {"text": "epoch three"})
    return workspace, lead_client, gp_client, manager_client


def test_it_leaves_a_member_who_reset_their_password_unable_to_read_until_re_keyed(
        trio, outsider, custodian, capture_events, django_capture_on_commit_callbacks):
    workspace, lead_client, gp_client, manager_client = trio
    assert [p.body["text"] for p in gp_client.read(workspace)] == ["epoch two", "epoch three"]
    password_reset(gp_client.persona, "a new passphrase after forgetting")
    gp_client.refresh_identity()
    assert gp_client.user.needs_rekey
    with pytest.raises(TrustError, match="no key for epoch 2"):
        gp_client.read(workspace)
    for wrap in EpochWrap.objects.filter(epoch__workspace=workspace, recipient=gp_client.user):
        with pytest.raises(crypto.DecryptionError):
            crypto.epoch_key_unwrap(bytes(wrap.sealed), gp_client.identity, workspace.public_id, wrap.epoch.number)
    assert selectors.members_needing_rekey(professional=manager_client.user, workspace=workspace) == [
        {"member": str(gp_client.user.public_id), "box_public": base64.b64encode(gp_client.identity.box_public).decode(),
         "epochs": [2, 3], "fingerprint": base64.b64encode(gp_client.identity.fingerprint()).decode()}]
    # Nobody wraps an epoch key for the new key until a colleague has compared its safety number.
    with pytest.raises(PermissionDenied, match="nobody in this workspace has confirmed Dr Priya GP's new key yet"):
        manager_client.rekey(workspace, gp_client.user, [2, 3])
    assert not EpochWrap.objects.filter(recipient_key=gp_client.user.current_identity_key()).exists()
    confirm(lead_client, workspace, gp_client.user)
    # Epoch 1 was never the GP's: no member may hand it over as "re-keying".
    with pytest.raises(PermissionDenied, match=r"cannot be shared with that member: \[1\]"):
        lead_client.rekey(workspace, gp_client.user, [1, 2])
    with pytest.raises(PermissionDenied):
        services.member_rekey(actor=outsider.user, workspace=workspace, member=gp_client.user,
                              wraps=lead_client.wraps_for(workspace, gp_client.user, [2]))
    with pytest.raises(ValidationError, match="no such epochs"):
        services.member_rekey(actor=manager_client.user, workspace=workspace, member=gp_client.user,
                              wraps={9: bytes(SEALED_EPOCH_KEY_BYTES)})
    assert gp_client.user.needs_rekey
    head = audit_head()
    # Any member can re-key once the key is confirmed: here the manager, a plain member, after the lead
    # confirmed it.
    with django_capture_on_commit_callbacks(execute=True):
        assert manager_client.rekey(workspace, gp_client.user, [2, 3]) == 2
    assert [p.body["text"] for p in gp_client.read(workspace)] == ["epoch two", "epoch three"]
    gp_client.user.refresh_from_db()
    assert not gp_client.user.needs_rekey
    [event] = audit_since(head)
    assert (event.kind, event.actor_id, event.data) == (
        "membership.rekeyed", manager_client.user.pk, {"member": str(gp_client.user.public_id), "epochs": [2, 3]})
    assert capture_events == [(f"user.{gp_client.user.pk}", {"type": "keys.added",
                                                               "workspace": str(workspace.public_id)})]
    assert selectors.members_needing_rekey(professional=lead_client.user, workspace=workspace) == []
    # Re-keying again adds nothing.
    assert lead_client.rekey(workspace, gp_client.user, [2]) == 0


def test_it_counts_only_a_confirmation_by_a_current_member_for_re_keying(trio, outsider, custodian):
    """A confirmation of the new key counts in a workspace only if its confirmer is an active member there:
    not the member themselves, not someone from another workspace, not a member who has since left."""
    workspace, lead_client, gp_client, manager_client = trio
    elsewhere = Client(outsider, custodian)
    other = elsewhere.create_workspace()
    join(elsewhere, other, gp_client)
    password_reset(gp_client.persona, "a new passphrase after forgetting")
    gp_client.refresh_identity()
    with pytest.raises(ValidationError, match="you cannot confirm your own key"):
        confirm(gp_client, workspace, gp_client.user)
    confirm(elsewhere, other, gp_client.user)  # a colleague in another workspace
    with pytest.raises(PermissionDenied, match="nobody in this workspace has confirmed"):
        lead_client.rekey(workspace, gp_client.user, [2, 3])
    assert elsewhere.rekey(other, gp_client.user, [2]) == 1  # where the confirmer is a member, it counts
    confirm(manager_client, workspace, gp_client.user)
    services.membership_leave(professional=manager_client.user, workspace=workspace)
    with pytest.raises(PermissionDenied, match="nobody in this workspace has confirmed"):
        lead_client.rekey(workspace, gp_client.user, [2, 3])


def test_it_keeps_needs_rekey_until_every_workspace_has_re_keyed(trio, custodian):
    workspace, lead_client, gp_client, _ = trio
    second = lead_client.create_workspace()
    join(lead_client, second, gp_client)
    password_reset(gp_client.persona, "a new passphrase after forgetting")
    gp_client.refresh_identity()
    confirm(lead_client, workspace, gp_client.user)  # one confirmation: the lead is a member of both
    lead_client.rekey(workspace, gp_client.user, [2, 3])
    gp_client.user.refresh_from_db()
    assert gp_client.user.needs_rekey
    lead_client.rekey(second, gp_client.user, [2])
    gp_client.user.refresh_from_db()
    assert not gp_client.user.needs_rekey


def test_it_lets_a_re_keyed_member_post_again_under_the_new_key(trio):
    workspace, lead_client, gp_client, _ = trio
    password_reset(gp_client.persona, "a new passphrase after forgetting")
    gp_client.refresh_identity()
    confirm(lead_client, workspace, gp_client.user)
    lead_client.rekey(workspace, gp_client.user, [2, 3])
    stored = post(gp_client, workspace, "update", {"text": "back"}).post
    assert stored.author_key.version == 2
    [opened] = lead_client.read(workspace, after=stored.seq - 1)
    # Readers verify with the new key, trusted because a member confirmed it (the manifest lists the old one).
    assert opened.body == {"text": "back"} and (opened.key_trust, opened.confirmed_by) == (
        "confirmed", lead_client.user.public_id)


def test_it_shows_a_late_joiner_earlier_history_only_once_the_lead_shares_it(pair, outsider, capture_events,
                                                                            django_capture_on_commit_callbacks):
    workspace, lead_client, gp_client = pair
    assert all(p.header.kind != "details" for p in gp_client.read(workspace))
    assert membership(workspace, gp_client.persona).first_epoch == 2
    with pytest.raises(PermissionDenied):
        services.history_share(lead=gp_client.user, workspace=workspace, member=gp_client.user,
                               wraps=lead_client.wraps_for(workspace, gp_client.user, [1]))
    with pytest.raises(PermissionDenied, match=r"cannot be shared with that member: \[2\]"):
        lead_client.share_history(workspace, gp_client.user, [2])
    with pytest.raises(ValidationError, match="not an active member"):
        services.history_share(lead=lead_client.user, workspace=workspace, member=outsider.user,
                               wraps=lead_client.wraps_for(workspace, gp_client.user, [1]))
    head = audit_head()
    with django_capture_on_commit_callbacks(execute=True):
        assert lead_client.share_history(workspace, gp_client.user, [1]) == 1
    [event] = audit_since(head)
    assert (event.kind, event.actor_id, event.data) == (
        "membership.history_shared", lead_client.user.pk, {"member": str(gp_client.user.public_id), "epochs": [1]})
    assert capture_events == [(f"user.{gp_client.user.pk}", {"type": "keys.added",
                                                               "workspace": str(workspace.public_id)})]
    assert membership(workspace, gp_client.persona).history_shared
    [details] = [p for p in gp_client.read(workspace) if p.header.kind == "details"]
    assert details.body == {**DETAILS, "workspace": str(workspace.public_id), "reference": workspace.reference}


def test_it_answers_a_retry_as_the_same_post_even_after_the_epoch_moved_on(pair):
    """A lost answer, a key rotation, then the client's retry: the same post, not a refusal."""
    workspace, lead_client, gp_client = pair
    payload = gp_client.seal(workspace, "update", {"text": "sent just before the rotation"})
    first = submit(gp_client.persona, workspace, payload)
    lead_client.rotate(workspace)
    again = submit(gp_client.persona, workspace, payload)
    assert (again.created, again.post.pk, again.post.epoch.number) == (False, first.post.pk, 2)


def test_it_refuses_every_service_to_a_disabled_account_that_still_has_a_membership_row(pair):
    """Deactivated behind the services' back (the admin site, a script): access.py still says no."""
    from accounts.models import Professional

    workspace, lead_client, gp_client = pair
    payload = gp_client.seal(workspace, "update", {"text": "x"})
    kept = gp_client.keys(workspace)
    Professional.objects.filter(pk=gp_client.user.pk).update(is_active=False)
    gp_client.user.refresh_from_db()
    assert membership(workspace, gp_client.persona).state == "active"
    with pytest.raises(PermissionDenied):
        submit(gp_client.persona, workspace, payload)
    for read in (selectors.post_list, selectors.workspace_detail, selectors.author_keys):
        with pytest.raises(Http404):
            read(professional=gp_client.user, workspace=workspace)
    with pytest.raises(PermissionDenied):
        confirm(gp_client, workspace, lead_client.user)
    with pytest.raises(PermissionDenied):
        services.member_rekey(actor=gp_client.user, workspace=workspace, member=lead_client.user,
                              wraps={2: crypto.epoch_key_wrap(workspace.public_id, 2, kept.epoch_keys[2],
                                                              lead_client.identity.box_public)})
    with pytest.raises(Conflict):
        services.membership_leave(professional=gp_client.user, workspace=workspace)
    # Nor does the lead's next epoch have to (or may it) wrap for them.
    with pytest.raises(Conflict, match="not members"):
        lead_client.rotate(workspace)
    bundle = lead_client.next_epoch_bundle(workspace, exclude={gp_client.user.pk})
    services.epoch_rotate(lead=lead_client.user, workspace=workspace, epoch=EpochBundle.parse(bundle))


def test_it_lets_only_the_lead_say_the_earlier_record_was_shared(pair):
    workspace, lead_client, gp_client = pair
    with pytest.raises(PermissionDenied, match="only the lead professional shares the earlier record"):
        post(gp_client, workspace, "history_shared", {"member": str(gp_client.user.public_id), "epochs": [1]})
    shared = post(lead_client, workspace, "history_shared", {"member": str(gp_client.user.public_id), "epochs": [1]})
    assert shared.post.kind == "history_shared"
    with pytest.raises(ValidationError, match="a history_shared does not target another post"):
        post(lead_client, workspace, "history_shared", {}, target=shared.post.post_id)


# --- key confirmations ----------------------------------------------------------------------------------


def test_it_stores_a_key_confirmation_audits_it_and_tells_the_team(pair, capture_events,
                                                                   django_capture_on_commit_callbacks):
    workspace, lead_client, gp_client = pair
    head = audit_head()
    with django_capture_on_commit_callbacks(execute=True):
        stored = confirm(gp_client, workspace, lead_client.user)
    lead_key, gp_key = lead_client.user.current_identity_key(), gp_client.user.current_identity_key()
    assert (stored.confirmer, stored.confirmer_key, stored.subject, stored.subject_key) == (
        gp_client.user, gp_key, lead_client.user, lead_key)
    assert crypto.verify_detached(gp_client.identity.sign_public, crypto.key_confirmation_statement(
        gp_client.user.public_id, lead_client.user.public_id, lead_client.identity.fingerprint(), stored.confirmed_ms),
        bytes(stored.signature))
    [event] = audit_since(head)
    assert (event.kind, event.actor_id, event.data) == (
        "key.confirmed", gp_client.user.pk, {"member": str(lead_client.user.public_id), "key_version": 1})
    assert capture_events == [(f"workspace.{workspace.pk}", {
        "type": "key.confirmed", "workspace": str(workspace.public_id), "member": str(lead_client.user.public_id)})]
    # Relayed to the members' clients, which check it again against keys they trust.
    [relayed] = selectors.workspace_detail(professional=lead_client.user, workspace=workspace)["key_confirmations"]
    assert (relayed["confirmer"], relayed["subject"], relayed["key_version"], relayed["confirmed_ms"]) == (
        str(gp_client.user.public_id), str(lead_client.user.public_id), 1, stored.confirmed_ms)
    assert base64.b64decode(relayed["signature"]) == bytes(stored.signature)


def test_it_takes_a_key_confirmation_once(pair, capture_events, django_capture_on_commit_callbacks):
    workspace, lead_client, gp_client = pair
    first = confirm(gp_client, workspace, lead_client.user)
    head = audit_head()
    with django_capture_on_commit_callbacks(execute=True):
        again = confirm(gp_client, workspace, lead_client.user, at_ms=now_ms() + 1000)  # a new signature
    assert again.pk == first.pk and again.confirmed_ms == first.confirmed_ms
    assert KeyConfirmation.objects.filter(confirmer=gp_client.user).count() == 1
    assert audit_since(head) == [] and capture_events == []


@pytest.mark.parametrize("case", ["signed by someone else", "signed by the subject", "signed for another key",
                                  "signed at another time", "zeros"])
def test_it_refuses_a_key_confirmation_whose_signature_does_not_verify(pair, outsider, custodian, case):
    workspace, lead_client, gp_client = pair
    arguments = confirmation(gp_client, lead_client.user, signer={
        "signed by someone else": Client(outsider, custodian).identity,
        "signed by the subject": lead_client.identity}.get(case))
    if case == "signed for another key":
        arguments["signature"] = confirmation(gp_client, lead_client.user,
                                              fingerprint=gp_client.identity.fingerprint())["signature"]
    if case == "signed at another time":
        arguments["confirmed_ms"] += 1
    if case == "zeros":
        arguments["signature"] = bytes(64)
    head = audit_head()
    with pytest.raises(ValidationError, match="the confirmation's signature does not verify with your key"):
        services.key_confirm(confirmer=gp_client.user, workspace=workspace, subject=lead_client.user, **arguments)
    assert not KeyConfirmation.objects.exists() and audit_since(head) == []


def test_it_refuses_to_confirm_ones_own_key(pair):
    workspace, _, gp_client = pair
    with pytest.raises(ValidationError, match="you cannot confirm your own key: a colleague compares it with you"):
        confirm(gp_client, workspace, gp_client.user)
    assert not KeyConfirmation.objects.exists()


def test_it_confirms_only_a_key_of_the_subjects(pair, outsider, custodian):
    """The fingerprint must be one of the subject's keys (their current one, or an earlier one, which the
    manifests may still list); anyone else's is refused."""
    workspace, lead_client, gp_client = pair
    for fingerprint in (gp_client.identity.fingerprint(), Client(outsider, custodian).identity.fingerprint(),
                        bytes(32)):
        with pytest.raises(Conflict, match="that safety number is not one of theirs"):
            confirm(gp_client, workspace, lead_client.user, fingerprint=fingerprint)
    earlier = gp_client.identity.fingerprint()
    password_reset(gp_client.persona, "a new passphrase after forgetting")
    assert confirm(lead_client, workspace, gp_client.user, fingerprint=earlier).subject_key.version == 1
    assert confirm(lead_client, workspace, gp_client.user).subject_key.version == 2


def test_it_confirms_only_the_keys_of_the_workspaces_members(pair, outsider, manager, custodian):
    workspace, lead_client, gp_client = pair
    with pytest.raises(ValidationError, match="that professional is not a member of this workspace"):
        confirm(lead_client, workspace, outsider.user)
    # An invitee is a member-to-be: the lead compares their safety number before admitting them.
    lead_client.invite(workspace, manager.user)
    assert confirm(lead_client, workspace, manager.user).subject == manager.user
    lead_client.rotate(workspace, remove=gp_client.user)
    with pytest.raises(ValidationError, match="that professional is not a member of this workspace"):
        confirm(lead_client, workspace, gp_client.user)
    with pytest.raises(PermissionDenied, match="you are not a member of this workspace"):
        confirm(gp_client, workspace, lead_client.user)


@pytest.mark.parametrize("minutes", [-11, 60 * 24])
def test_it_refuses_a_key_confirmation_from_a_clock_far_off(pair, minutes):
    workspace, lead_client, gp_client = pair
    with pytest.raises(ValidationError, match="more than 10 minutes from the server's clock"):
        confirm(gp_client, workspace, lead_client.user, at_ms=now_ms() + minutes * 60_000)


# --- the saved state ------------------------------------------------------------------------------------


def sealed_state(client: Client, version: int, memory: Memory | None = None) -> dict:
    """What the member's client saves: its Memory encrypted and signed under its identity key."""
    saved = (memory or Memory()).seal(client.identity, client.user.public_id, version)
    return {"version": version, "blob": base64.b64decode(saved["blob"]),
            "signature": base64.b64decode(saved["signature"])}


def save_state(client: Client, saved: dict):
    return services.client_state_save(professional=client.user, **saved)


def test_it_saves_the_state_audits_it_and_serves_it_back(pair):
    workspace, _, gp_client = pair
    assert selectors.client_state(professional=gp_client.user) == {"version": 0, "blob": None, "signature": None}
    memory = Memory()
    memory.verify(workspace.lead.public_id, bytes(32), now_ms())
    head = audit_head()
    assert save_state(gp_client, sealed_state(gp_client, 1, memory)).version == 1
    [event] = audit_since(head)
    assert (event.kind, event.actor_id, event.data) == ("client_state.saved", gp_client.user.pk, {"version": 1})
    served = selectors.client_state(professional=gp_client.user)
    assert served["version"] == 1
    assert Memory.open(gp_client.identity, gp_client.user.public_id, served).verified == memory.verified


def test_it_saves_only_the_next_version_of_the_state(pair):
    _, _, gp_client = pair
    save_state(gp_client, sealed_state(gp_client, 1))
    for version in (1, 3):  # a writer that read an older copy, or one that skips ahead
        with pytest.raises(Conflict, match="the saved state is at version 1: read it, merge and save version 2"):
            save_state(gp_client, sealed_state(gp_client, version))
    assert save_state(gp_client, sealed_state(gp_client, 2)).version == 2
    assert selectors.client_state(professional=gp_client.user)["version"] == 2


@pytest.mark.parametrize("case", ["signed by someone else", "signed for another version", "altered", "zeros"])
def test_it_refuses_a_state_not_signed_with_the_current_key(pair, case):
    _, lead_client, gp_client = pair
    saved = sealed_state(gp_client, 1)
    if case == "signed by someone else":
        saved["signature"] = lead_client.identity.sign(crypto.state_signed_message(gp_client.user.public_id, 1,
                                                                                   saved["blob"]))
    elif case == "signed for another version":
        saved["signature"] = sealed_state(gp_client, 2)["signature"]
    elif case == "altered":
        saved["blob"] = saved["blob"][:-1] + bytes([saved["blob"][-1] ^ 1])
    else:
        saved["signature"] = bytes(64)
    head = audit_head()
    with pytest.raises(ValidationError, match="the saved state is not signed with your current key"):
        save_state(gp_client, saved)
    assert selectors.client_state(professional=gp_client.user)["version"] == 0 and audit_since(head) == []


def test_it_refuses_a_state_larger_than_the_limit(pair):
    _, _, gp_client = pair
    blob = bytes(services.MAX_STATE_BYTES + 1)
    signature = gp_client.identity.sign(crypto.state_signed_message(gp_client.user.public_id, 1, blob))
    with pytest.raises(ValidationError, match=f"larger than {services.MAX_STATE_BYTES} bytes"):
        save_state(gp_client, {"version": 1, "blob": blob, "signature": signature})


def test_it_does_not_serve_a_state_sealed_under_a_replaced_key(pair):
    """After a password reset the old state cannot be opened (new keys): it is not served, its versions
    start again, and the old key can no longer write."""
    _, _, gp_client = pair
    old_device = gp_client.identity
    save_state(gp_client, sealed_state(gp_client, 1))
    save_state(gp_client, sealed_state(gp_client, 2))
    password_reset(gp_client.persona, "a new passphrase after forgetting")
    assert selectors.client_state(professional=gp_client.user) == {"version": 0, "blob": None, "signature": None}
    stale = sealed_state(gp_client, 1)  # still sealed by the old identity
    with pytest.raises(ValidationError, match="not signed with your current key"):
        save_state(gp_client, stale)
    gp_client.refresh_identity()
    assert gp_client.identity != old_device
    assert save_state(gp_client, sealed_state(gp_client, 1)).version == 1
    served = selectors.client_state(professional=gp_client.user)
    assert Memory.open(gp_client.identity, gp_client.user.public_id, served).workspaces == {}
