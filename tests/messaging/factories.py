"""Client-side steps done as a member's client would, in Python (tacclient.workspace), for the
messaging tests: the server only ever sees what these produce."""

from __future__ import annotations

import datetime as dt
import uuid

from accounts.models import Professional
from messaging import selectors, services
from messaging.models import Workspace
from messaging.schemas import EpochBundle, PostEnvelope
from tacclient import crypto
from tacclient.workspace import (
    MemberKey, WorkspaceKeys, author_sign_keys, epoch_bundle, invite_signature, open_post, seal_post,
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


class Client:
    """One member's client: their identity and what they have verified of each workspace."""

    def __init__(self, persona, custodian: crypto.Identity):
        self.persona = persona
        self.user = persona.user
        self.identity = identity_of(persona)
        self.custodian_public = custodian.box_public

    def refresh_identity(self):
        self.identity = identity_of(self.persona)

    def detail(self, workspace: Workspace) -> dict:
        detail = selectors.workspace_detail(professional=self.user, workspace=workspace)
        detail["author_keys"] = selectors.author_keys(professional=self.user, workspace=workspace)
        return detail

    def keys(self, workspace: Workspace) -> WorkspaceKeys:
        return verify_workspace(self.detail(workspace), self.identity)

    def create_workspace(self, details: dict | None = None) -> Workspace:
        workspace_id = uuid.uuid4()
        bundle, key = epoch_bundle(lead=self.identity, workspace_id=workspace_id, epoch=1,
                                   prev_manifest_hash=crypto.ZERO_HASH,
                                   members=[member_key(self.user, "lead")], custodian_public=self.custodian_public)
        envelope = None
        if details is not None:
            envelope = PostEnvelope.parse(seal_post(identity=self.identity, author_id=self.user.public_id,
                                                    workspace_id=workspace_id, epoch=1, epoch_key=key,
                                                    kind="details", body=details))
        return services.workspace_create(lead=self.user, workspace_id=workspace_id, epoch=EpochBundle.parse(bundle),
                                         details=envelope)

    def invite(self, workspace: Workspace, other: Professional, role: str = "member"):
        signature = invite_signature(self.identity, workspace.public_id, member_key(other, role), role)
        import base64

        return services.membership_invite(lead=self.user, workspace=workspace, professional=other, role=role,
                                          invite_signature=base64.b64decode(signature))

    def next_epoch_bundle(self, workspace: Workspace, *, exclude: set[int] = frozenset(),
                          lead: Professional | None = None, include_accepted: bool = True) -> dict:
        from messaging.models import Membership

        workspace.refresh_from_db()
        keys = self.keys(workspace)
        states = ["active"] + (["accepted"] if include_accepted else [])
        memberships = Membership.objects.filter(workspace=workspace, state__in=states).exclude(
            professional_id__in=exclude).select_related("professional")
        lead = lead or workspace.lead
        members = [member_key(m.professional, "lead" if m.professional_id == lead.pk else
                              ("member" if m.role == "lead" else m.role)) for m in memberships]
        bundle, _ = epoch_bundle(lead=self.identity, workspace_id=workspace.public_id,
                                 epoch=workspace.current_epoch + 1,
                                 prev_manifest_hash=keys.manifest_hashes[workspace.current_epoch],
                                 members=members, custodian_public=self.custodian_public)
        return bundle

    def rotate(self, workspace: Workspace, *, remove: Professional | None = None, new_lead: Professional | None = None):
        bundle = self.next_epoch_bundle(workspace, exclude={remove.pk} if remove else set(), lead=new_lead)
        return services.epoch_rotate(lead=self.user, workspace=workspace, epoch=EpochBundle.parse(bundle),
                                     remove=remove, new_lead=new_lead)

    def seal(self, workspace: Workspace, kind: str, body: dict, **fields) -> dict:
        workspace.refresh_from_db()
        keys = self.keys(workspace)
        return seal_post(identity=self.identity, author_id=self.user.public_id, workspace_id=workspace.public_id,
                         epoch=keys.current_epoch, epoch_key=keys.epoch_keys[keys.current_epoch], kind=kind,
                         body=body, **fields)

    def post(self, workspace: Workspace, kind: str, body: dict, **fields):
        return services.post_create(author=self.user, workspace=workspace,
                                    envelope=PostEnvelope.parse(self.seal(workspace, kind, body, **fields)))

    def read(self, workspace: Workspace, after: int = 0):
        detail = self.detail(workspace)
        keys = verify_workspace(detail, self.identity)
        signers = author_sign_keys(detail["author_keys"])
        return [open_post(p, keys, signers)
                for p in selectors.post_list(professional=self.user, workspace=workspace, after_seq=after)]


def due(days: int) -> dt.date:
    return dt.date.today() + dt.timedelta(days=days)
