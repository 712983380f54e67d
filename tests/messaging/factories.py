"""Client-side steps done as a member's client would, in Python (tacprotocol.workspace), for the
messaging tests: the server only ever sees what these produce."""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid

from django.conf import settings

from accounts.models import Professional
from accounts.schemas import KeyEnrolment
from accounts.services import password_reset_complete
from messaging import custodian as custodian_pin
from messaging import selectors, services
from messaging.models import Post, Workspace
from messaging.schemas import EpochBundle, PostEnvelope
from tacprotocol import crypto
from tacprotocol.workspace import (
    CustodianPin,
    MemberKey,
    WorkspaceKeys,
    epoch_bundle,
    invite_signature,
    key_confirmation,
    open_post,
    seal_post,
    verify_workspace,
)


def identity_of(persona) -> crypto.Identity:
    """Open the persona's sealed identity keys with their password, as their client does at sign-in."""
    user = persona.user
    user.refresh_from_db()
    key = user.current_identity_key()
    keys = crypto.derive_keys(persona.password, bytes(user.kdf_salt), user.kdf_opslimit, user.kdf_memlimit)
    ad = crypto.identity_wrap_ad(user.public_id, bytes(user.kdf_salt), user.kdf_opslimit, user.kdf_memlimit)
    return crypto.identity_unwrap(bytes(key.wrapped_secret), keys.wrap_key, ad)


def member_key(user: Professional, role: str) -> MemberKey:
    return MemberKey.from_card(selectors.professional_card(user), role)


def newest(workspace: Workspace) -> tuple[int, bytes] | None:
    """(seq, hash) of the workspace's newest post as stored: what an honest client, having read the thread,
    names as the post it follows."""
    post = Post.objects.filter(workspace=workspace).order_by("-seq").first()
    if post is None:
        return None
    return post.seq, crypto.post_hash(bytes(post.header), bytes(post.nonce), bytes(post.ciphertext))


class Client:
    """One member's client: their identity and what they have verified of each workspace."""

    def __init__(self, persona, custodian: crypto.Identity):
        self.persona = persona
        self.user = persona.user
        self.identity = identity_of(persona)
        self.custodian_key = (crypto.custodian_key_id(custodian.box_public, custodian.sign_public),
                              custodian.box_public, custodian.sign_public)

    @property
    def custodian_public(self) -> bytes:
        return self.custodian_key[1]

    def refresh_identity(self):
        self.identity = identity_of(self.persona)

    def detail(self, workspace: Workspace) -> dict:
        detail = selectors.workspace_detail(professional=self.user, workspace=workspace)
        detail["author_keys"] = selectors.author_keys(professional=self.user, workspace=workspace)
        return detail

    def keys(self, workspace: Workspace, **options) -> WorkspaceKeys:
        return verify_workspace(self.detail(workspace), self.identity, my_id=self.user.public_id,
                                pin=CustodianPin.parse(custodian_pin.pin_read()), **options)

    def workspace_payload(self, details: dict | None = None, *, workspace_id: uuid.UUID | None = None,
                          details_kind: str = "details", **bundle_fields) -> dict:
        """The JSON body of POST /api/v1/workspaces, as the lead's browser makes it. `bundle_fields` go to
        epoch_bundle (members=, custodian=, prev_manifest_hash=, epoch=, created_ms=) to make it wrong.
        With `details`, also the (older) one-step form: the child's details sealed in the same request."""
        workspace_id = workspace_id or uuid.uuid4()
        fields = {"epoch": 1, "prev_manifest_hash": crypto.ZERO_HASH, "members": [member_key(self.user, "lead")],
                  "custodian": self.custodian_key, **bundle_fields}
        bundle, key = epoch_bundle(lead=self.identity, workspace_id=workspace_id, **fields)
        body = {"id": str(workspace_id), "epoch": bundle}
        if details is not None:
            body["details"] = seal_post(identity=self.identity, author_id=self.user.public_id,
                                        workspace_id=workspace_id, epoch=1, epoch_key=key, kind=details_kind,
                                        body=details)
        return body

    def create_workspace(self, details: dict | None = None) -> Workspace:
        """Open a workspace and post the child's details bound to its id and reference, as clients do."""
        body = self.workspace_payload()
        workspace = services.workspace_create(lead=self.user, workspace_id=uuid.UUID(body["id"]),
                                              epoch=EpochBundle.parse(body["epoch"]))
        if details is not None:
            self.post(workspace, "details", {**details, "workspace": body["id"], "reference": workspace.reference})
            workspace.refresh_from_db()
        return workspace

    def invite_payload(self, workspace: Workspace, other: Professional, role: str = "member",
                       nonce: bytes | None = None) -> dict:
        workspace.refresh_from_db()
        nonce = nonce or os.urandom(crypto.INVITE_NONCE_BYTES)
        return {"member": str(other.public_id), "role": role, "invite_nonce": base64.b64encode(nonce).decode(),
                "invite_signature": invite_signature(self.identity, workspace.public_id, member_key(other, role), role,
                                                     workspace.current_epoch, nonce)}

    def invite(self, workspace: Workspace, other: Professional, role: str = "member"):
        payload = self.invite_payload(workspace, other, role)
        return services.membership_invite(lead=self.user, workspace=workspace, professional=other, role=role,
                                          invite_signature=base64.b64decode(payload["invite_signature"]),
                                          invite_nonce=base64.b64decode(payload["invite_nonce"]))

    def next_epoch_bundle(self, workspace: Workspace, *, exclude: set[int] = frozenset(),
                          lead: Professional | None = None, include_accepted: bool = True,
                          deputies: list[Professional] | None = None) -> dict:
        from messaging.models import Membership

        workspace.refresh_from_db()
        keys = self.keys(workspace)
        states = ["active"] + (["accepted"] if include_accepted else [])
        memberships = Membership.objects.filter(workspace=workspace, state__in=states).exclude(
            professional_id__in=exclude).select_related("professional")
        lead = lead or workspace.lead
        named = None if deputies is None else {d.pk for d in deputies}

        def role(m) -> str:
            if m.professional_id == lead.pk:
                return "lead"
            if named is not None and m.role in ("member", "deputy"):
                return "deputy" if m.professional_id in named else "member"
            return "member" if m.role == "lead" else m.role

        members = [member_key(m.professional, role(m)) for m in memberships]
        bundle, _ = epoch_bundle(lead=self.identity, workspace_id=workspace.public_id,
                                 epoch=workspace.current_epoch + 1,
                                 prev_manifest_hash=keys.manifest_hashes[workspace.current_epoch],
                                 members=members, custodian=self.custodian_key)
        return bundle

    def rotate(self, workspace: Workspace, *, remove: Professional | None = None, new_lead: Professional | None = None,
               deputies: list[Professional] | None = None):
        bundle = self.next_epoch_bundle(workspace, exclude={remove.pk} if remove else set(), lead=new_lead,
                                        deputies=deputies)
        return services.epoch_rotate(lead=self.user, workspace=workspace, epoch=EpochBundle.parse(bundle),
                                     remove=remove, new_lead=new_lead, deputies=deputies)

    def seal(self, workspace: Workspace, kind: str, body: dict, *, epoch: int | None = None,
             keys: WorkspaceKeys | None = None, **fields) -> dict:
        """A post as this member's client sends it (the JSON of POST .../posts and of a post.create frame),
        after the workspace's newest post. `keys` lets a client that can no longer fetch the workspace
        (removed) use what it kept."""
        workspace.refresh_from_db()
        keys = keys or self.keys(workspace)
        epoch = epoch or keys.current_epoch
        fields.setdefault("prev", newest(workspace))
        return seal_post(identity=self.identity, author_id=self.user.public_id, workspace_id=workspace.public_id,
                         epoch=epoch, epoch_key=keys.epoch_keys[epoch], kind=kind, body=body, **fields)

    def post(self, workspace: Workspace, kind: str, body: dict, **fields):
        return services.post_create(author=self.user, workspace=workspace,
                                    envelope=PostEnvelope.parse(self.seal(workspace, kind, body, **fields)))

    def read(self, workspace: Workspace, after: int = 0):
        keys = self.keys(workspace)
        workspace.refresh_from_db()
        return [open_post(p, keys, details_reference=workspace.reference)
                for p in selectors.post_list(professional=self.user, workspace=workspace, after_seq=after)]

    def wraps_for(self, workspace: Workspace, member: Professional, epochs) -> dict[int, bytes]:
        """The epoch keys this client holds, sealed for `member`'s current key (re-keying, history)."""
        keys = self.keys(workspace)
        box_public = bytes(member.current_identity_key().box_public)
        return {n: crypto.epoch_key_wrap(workspace.public_id, n, keys.epoch_keys[n], box_public) for n in epochs}

    def confirm(self, workspace: Workspace, member: Professional):
        """This member compared `member`'s safety number with them: the signed confirmation."""
        c = key_confirmation(self.identity, self.user.public_id, member_key(member, "member"))
        return services.key_confirm(confirmer=self.user, workspace=workspace, subject=member,
                                    fingerprint=base64.b64decode(c["fingerprint"]), confirmed_ms=c["confirmed_ms"],
                                    signature=base64.b64decode(c["signature"]))

    def rekey(self, workspace: Workspace, member: Professional, epochs) -> int:
        return services.member_rekey(actor=self.user, workspace=workspace, member=member,
                                     wraps=self.wraps_for(workspace, member, epochs))

    def share_history(self, workspace: Workspace, member: Professional, epochs) -> int:
        return services.history_share(lead=self.user, workspace=workspace, member=member,
                                      wraps=self.wraps_for(workspace, member, epochs))


def envelope(payload: dict) -> PostEnvelope:
    return PostEnvelope.parse(payload)


def join(lead_client: Client, workspace: Workspace, *members: Client, role: str = "member"):
    """Invite, accept, and the lead's client starts one epoch that admits the newcomers."""
    for member in members:
        lead_client.invite(workspace, member.user, role)
        services.membership_respond(professional=member.user, workspace=workspace, accept=True)
    return lead_client.rotate(workspace)


def flip(payload: dict, field: str, index: int = -1) -> dict:
    """The same post with one byte of `field` (header, nonce, ciphertext, signature) flipped."""
    raw = bytearray(base64.b64decode(payload[field]))
    raw[index] ^= 0x01
    return {**payload, field: base64.b64encode(bytes(raw)).decode()}


def password_reset(persona, new_password: str) -> crypto.Identity:
    """A forgotten password: the browser made new keys (accounts.services.password_reset_complete)."""
    enrolment, identity = KeyEnrolment.from_password(password=new_password, public_id=persona.user.public_id,
                                                     opslimit=settings.TAC_KDF_OPSLIMIT,
                                                     memlimit=settings.TAC_KDF_MEMLIMIT)
    password_reset_complete(professional=persona.user, enrolment=enrolment, otp_token=persona.totp())
    persona.password = new_password
    persona.user.refresh_from_db()
    return identity


def due(days: int) -> dt.date:
    return dt.date.today() + dt.timedelta(days=days)
