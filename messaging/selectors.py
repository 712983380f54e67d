"""Every visibility-filtered read of workspaces and posts. Each takes the reader and applies access.py."""

from __future__ import annotations

import base64
import datetime as dt

from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from accounts.models import Professional
from tacprotocol import actions, crypto
from tacprotocol.wire import EPOCH_MAX_AGE_MS, EPOCH_MAX_POSTS

from . import access, storage
from .models import ActionSummary, ClientState, Epoch, EpochWrap, KeyConfirmation, Membership, Post, Workspace
from .payloads import post_payloads_from_rows


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode()


def workspace_list(*, professional: Professional) -> list[dict]:
    """My workspaces (and invitations) with unread counts and the highest open RAG."""
    memberships = (
        Membership.objects.filter(professional=professional, state__in=Membership.CURRENT_STATES)
        .select_related("workspace", "workspace__lead", "workspace__lead__agency")
        .annotate(unread=Count("workspace__posts", filter=Q(workspace__posts__seq__gt=F("last_read_seq"))
                               & ~Q(workspace__posts__author=professional)))
        .order_by("-workspace__created_at")
    )
    return [
        {
            "id": str(m.workspace.public_id),
            "reference": m.workspace.reference,
            "status": m.workspace.status,
            "current_rag": m.workspace.current_rag,
            "lead": {"id": str(m.workspace.lead.public_id), "name": m.workspace.lead.full_name,
                     "agency": m.workspace.lead.agency.name},
            "my_role": m.role,
            "my_state": m.state,
            "unread": m.unread if m.state == Membership.State.ACTIVE else 0,
            "last_seq": m.workspace.last_seq if m.state == Membership.State.ACTIVE else None,
            "created_at": m.workspace.created_at.isoformat(),
        }
        for m in memberships
    ]


def professional_card(p: Professional) -> dict:
    key = p.current_identity_key()
    return {
        "id": str(p.public_id),
        "name": p.full_name,
        "job_title": p.job_title,
        "agency": p.agency.name,
        "agency_kind": p.agency.kind,
        "key_version": key.version if key else None,
        "sign_public": b64(key.sign_public) if key else None,
        "box_public": b64(key.box_public) if key else None,
        "binding_signature": b64(key.binding_signature) if key else None,
        "fingerprint": b64(crypto.fingerprint(bytes(key.sign_public), bytes(key.box_public))) if key else None,
        # When the current key was made, if it replaced another (a password reset): the server's word, for
        # the sentence the team sees; trust never rests on it.
        "key_changed_at": key.created_at.isoformat() if key and key.version > 1 else None,
        "needs_rekey": p.needs_rekey,
    }


def workspace_detail(*, professional: Professional, workspace: Workspace) -> dict:
    """Everything a member's client needs to check keys and read: members and their public keys, the
    chain of signed manifests, and the epoch keys wrapped for the caller."""
    membership = access.current_membership(professional, workspace)
    if membership is None:
        raise access_denied()
    base = {
        "id": str(workspace.public_id),
        "reference": workspace.reference,
        "status": workspace.status,
        "current_rag": workspace.current_rag,
        "current_epoch": workspace.current_epoch,
        "last_seq": workspace.last_seq,
        "lead": str(workspace.lead.public_id),
        "my_role": membership.role,
        "my_state": membership.state,
    }
    if membership.state != Membership.State.ACTIVE:
        return base
    memberships = (Membership.objects.filter(workspace=workspace).select_related("professional__agency", "invited_by")
                   .order_by("invited_at"))
    epochs = Epoch.objects.filter(workspace=workspace).select_related("signed_by", "signer_key").order_by("number")
    my_wraps = (EpochWrap.objects.filter(epoch__workspace=workspace, recipient=professional)
                .select_related("epoch", "recipient_key", "created_by").order_by("epoch__number"))
    keyed = {}
    for w in my_wraps:
        keyed.setdefault(w.epoch.number, []).append(w)
    return {
        **base,
        # The server's view; clients decide from the signed manifest's time and the posts they verified.
        "rotation_due": rotation_due(workspace),
        "rotation_required": workspace.rotation_required,
        "last_read_seq": membership.last_read_seq,
        "history_shared": membership.history_shared,
        "members": [
            {
                **professional_card(m.professional),
                "role": m.role,
                "state": m.state,
                "invited_by": str(m.invited_by.public_id) if m.invited_by else None,
                # The lead's signature over crypto.invite_statement: the lead's client admits to a new
                # epoch only members it really invited, so a server cannot slip one in.
                "invite_signature": b64(m.invite_signature) if m.invite_signature else None,
                "invite_epoch": m.invite_epoch,
                "invite_nonce": b64(m.invite_nonce) if m.invite_nonce else None,
                "invited_at": m.invited_at.isoformat(),
                "joined_at": m.joined_at.isoformat() if m.joined_at else None,
                "left_at": m.left_at.isoformat() if m.left_at else None,
                "first_epoch": m.first_epoch,
                "history_shared": m.history_shared,
            }
            for m in memberships
        ],
        "epochs": [
            {
                "number": e.number,
                "manifest": b64(e.manifest),
                "manifest_signature": b64(e.manifest_signature),
                "signed_by": str(e.signed_by.public_id),
                "signer_key_version": e.signer_key.version,
                "signer_sign_public": b64(e.signer_key.sign_public),
                "created_at": e.created_at.isoformat(),
                "my_wraps": [
                    {"sealed": b64(w.sealed), "key_version": w.recipient_key.version, "reason": w.reason,
                     "by": str(w.created_by.public_id)}
                    for w in keyed.get(e.number, [])
                ],
            }
            for e in epochs
        ],
        "key_confirmations": key_confirmations(workspace),
        # Custodian-signed appointments of a lead for a frozen workspace: clients check them on their pin.
        "lead_appointments": lead_appointments(workspace),
        "continuity": continuity(workspace, memberships),
    }


def lead_appointments(workspace: Workspace) -> list[dict]:
    return [{"epoch": a.after_epoch, "appointee": str(a.appointee.public_id), "fingerprint": b64(a.fingerprint),
             "created_ms": a.created_ms, "signature": b64(a.signature)}
            for a in workspace.lead_appointments.select_related("appointee").order_by("after_epoch")]


def continuity(workspace: Workspace, memberships) -> dict:
    """In the server's words, who can sign the next epoch: "led" (the lead is an active member) or
    "frozen" (the lead has gone and no deputy remains: only the custodians can appoint a lead). The
    page says why and who can unfreeze it; clients still believe only signed manifests."""
    lead = next((m for m in memberships if m.professional_id == workspace.lead_id), None)
    if lead is not None and lead.state == Membership.State.ACTIVE and lead.professional.is_active:
        return {"state": "led"}
    return {"state": "frozen", "lead_name": workspace.lead.full_name,
            "left_at": lead.left_at.isoformat() if lead is not None and lead.left_at else None}


def action_list(*, workspace: Workspace) -> list[dict]:
    """Where each action of the workspace stands (its summary row), in order, with whether it is overdue
    today (Europe/London): metadata only, never content. Retracted actions are left out."""
    today = timezone.localdate()
    iso = lambda value: value.isoformat() if value else None  # noqa: E731
    rows = (ActionSummary.objects.filter(workspace=workspace, retracted=False).order_by("action__seq")
            .values("action__post_id", "action__seq", "owner__public_id", "status", "due_date", "accepted_at",
                    "done_at", "confirmed_at", "updated_at"))
    return [{"action": str(r["action__post_id"]), "seq": r["action__seq"], "owner": str(r["owner__public_id"]),
             "status": r["status"], "due": iso(r["due_date"]),
             "overdue": actions.overdue(r["status"], r["due_date"], today),
             "accepted_at": iso(r["accepted_at"]), "done_at": iso(r["done_at"]),
             "confirmed_at": iso(r["confirmed_at"]), "updated_at": iso(r["updated_at"])} for r in rows]


# "Due soon" on My work: due within this many days.
DUE_SOON_DAYS = 7


def my_work(*, professional: Professional) -> dict:
    """What is waiting for this professional, across the workspaces they are an active member of, from the
    server's metadata only (never content): actions they own that are still to do (overdue first, then
    by due date), actions waiting for them to accept, red and amber concerns from other agencies that
    nobody at their agency has acknowledged, and invitations."""
    today = timezone.localdate()
    mine = Membership.objects.filter(professional=professional, professional__is_active=True,
                                     state=Membership.State.ACTIVE).values("workspace_id")
    owned = (ActionSummary.objects.filter(owner=professional, workspace_id__in=mine, retracted=False,
                                          status__in=actions.PENDING)
             .values("workspace__public_id", "workspace__reference", "action__post_id", "action__seq", "status",
                     "due_date"))
    items = [{"workspace": str(a["workspace__public_id"]), "reference": a["workspace__reference"],
              "action": str(a["action__post_id"]), "seq": a["action__seq"], "status": a["status"],
              "due": a["due_date"].isoformat() if a["due_date"] else None,
              "overdue": actions.overdue(a["status"], a["due_date"], today),
              "due_soon": bool(a["due_date"]) and today <= a["due_date"] <= today + dt.timedelta(days=DUE_SOON_DAYS)}
             for a in owned]
    items.sort(key=lambda a: (not a["overdue"], a["due"] is None, a["due"] or "", a["reference"], a["seq"]))
    retracted = Post.objects.filter(kind="retraction", target=OuterRef("pk"))
    acknowledged = Post.objects.filter(kind="acknowledgement", target=OuterRef("pk"),
                                       author__agency_id=professional.agency_id)
    concerns = (Post.objects.filter(workspace_id__in=mine, kind="concern", rag__in=("red", "amber"))
                .exclude(author__agency_id=professional.agency_id)
                .filter(~Exists(retracted), ~Exists(acknowledged))
                .order_by("-rag", "created_at")  # red before amber, oldest first
                .values("workspace__public_id", "workspace__reference", "post_id", "seq", "rag", "created_at"))
    invitations = Membership.objects.filter(professional=professional, state=Membership.State.INVITED).count()
    return {
        "actions": [a for a in items if a["status"] != "open"],
        "to_accept": [a for a in items if a["status"] == "open"],
        "concerns": [{"workspace": str(c["workspace__public_id"]), "reference": c["workspace__reference"],
                      "post": str(c["post_id"]), "seq": c["seq"], "rag": c["rag"],
                      "created_at": c["created_at"].isoformat()} for c in concerns],
        "invitations": invitations,
    }


def key_confirmations(workspace: Workspace) -> list[dict]:
    """Signed statements, by anyone who has been a member, about the keys of anyone who has been one:
    each reader decides which confirmers it trusts (tacprotocol.workspace.verify_workspace)."""
    people = Membership.objects.filter(workspace=workspace).values("professional_id")
    confirmations = (KeyConfirmation.objects.filter(subject_id__in=people, confirmer_id__in=people)
                     .select_related("confirmer", "subject", "subject_key").order_by("created_at"))
    return [
        {"confirmer": str(c.confirmer.public_id), "subject": str(c.subject.public_id),
         "key_version": c.subject_key.version, "sign_public": b64(c.subject_key.sign_public),
         "box_public": b64(c.subject_key.box_public), "binding_signature": b64(c.subject_key.binding_signature),
         "confirmed_ms": c.confirmed_ms, "signature": b64(c.signature)}
        for c in confirmations
    ]


def client_state(*, professional: Professional) -> dict:
    """The professional's saved state, if it was sealed under their current identity key."""
    state = ClientState.objects.filter(professional=professional).select_related("identity_key").first()
    key = professional.current_identity_key()
    if state is None or key is None or state.identity_key_id != key.pk:
        return {"version": 0, "blob": None, "signature": None}
    return {"version": state.version, "blob": b64(state.blob), "signature": b64(state.signature)}


def post_list(*, professional: Professional, workspace: Workspace, after_seq: int = 0, limit: int = 500,
              kind: str | None = None) -> list[dict]:
    """Posts after `after_seq`, in order, from the epochs the reader was given a key for (in a manifest,
    by re-keying or by a history grant): a member never sees posts from before they joined unless the
    lead shared that history, and nothing after they left.

    Every reconnecting socket reads its backlog here, so the statements are hand-written
    (teamaroundchild/sql.py): the reader's epochs with the membership check, then the page."""
    epochs = storage.reader_epoch_ids(workspace.pk, professional.pk)
    if not epochs:
        # No rows: not an active member (or, to be exact about the error, a member with no key yet).
        if not access.is_active_member(professional.pk, workspace.pk):
            raise access_denied()
        return []
    rows = storage.post_page(workspace.pk, after_seq=after_seq, epoch_ids=epochs, kind=kind, limit=limit)
    return post_payloads_from_rows(rows)


def author_keys(*, professional: Professional, workspace: Workspace) -> list[dict]:
    """Every identity key (current and replaced) of everyone who signed in this workspace: readers verify
    old posts with the key that signed them."""
    if access.active_membership(professional, workspace) is None:
        raise access_denied()
    from accounts.models import IdentityKey

    ids = Membership.objects.filter(workspace=workspace).values_list("professional_id", flat=True)
    return [
        {"professional": str(k.professional.public_id), "version": k.version, "sign_public": b64(k.sign_public),
         "box_public": b64(k.box_public), "binding_signature": b64(k.binding_signature),
         "created_at": k.created_at.isoformat(), "replaced_at": k.replaced_at.isoformat() if k.replaced_at else None}
        for k in IdentityKey.objects.filter(professional_id__in=ids).select_related("professional")
    ]


def directory_search(*, query: str, limit: int = 20) -> list[dict]:
    """Professionals by name or agency, for the lead's invite search. Active accounts with keys only."""
    query = query.strip()
    if len(query) < 2:
        return []
    people = (Professional.objects.filter(is_active=True, identity_keys__replaced_at__isnull=True)
              .filter(Q(full_name__icontains=query) | Q(agency__name__icontains=query) | Q(email__iexact=query))
              .select_related("agency").order_by("full_name")[:limit])
    return [professional_card(p) for p in people]


def members_needing_rekey(*, professional: Professional, workspace: Workspace) -> list[dict]:
    """Members whose current key lacks epochs they are entitled to and that the caller can give."""
    if access.active_membership(professional, workspace) is None:
        raise access_denied()
    mine = set(EpochWrap.objects.filter(epoch__workspace=workspace, recipient=professional)
               .values_list("epoch__number", flat=True))
    out = []
    for m in Membership.objects.filter(workspace=workspace, state=Membership.State.ACTIVE).select_related("professional"):
        p = m.professional
        key = p.current_identity_key()
        entitled = set(EpochWrap.objects.filter(epoch__workspace=workspace, recipient=p)
                       .values_list("epoch__number", flat=True))
        have = set(EpochWrap.objects.filter(epoch__workspace=workspace, recipient_key=key)
                   .values_list("epoch__number", flat=True))
        missing = sorted((entitled - have) & mine)
        if missing:
            out.append({"member": str(p.public_id), "box_public": b64(key.box_public), "epochs": missing,
                        "fingerprint": b64(crypto.fingerprint(bytes(key.sign_public), bytes(key.box_public)))})
    return out


def access_denied():
    from django.http import Http404

    return Http404("No such workspace, or you are not a member")


EPOCH_MAX_AGE = dt.timedelta(milliseconds=EPOCH_MAX_AGE_MS)


def rotation_due(workspace: Workspace) -> bool:
    """Whether the lead's device should start a new epoch now: the server asks for one (a member left),
    the current one is 500 posts or 30 days old, or someone accepted an invitation."""
    epoch = workspace.epochs.filter(number=workspace.current_epoch).first()
    if epoch is None:
        return False
    return (workspace.rotation_required or workspace.last_seq - epoch.start_seq >= EPOCH_MAX_POSTS
            or timezone.now() - epoch.created_at >= EPOCH_MAX_AGE
            or Membership.objects.filter(workspace=workspace, state=Membership.State.ACCEPTED).exists())
