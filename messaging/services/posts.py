"""Storing a post: checked, numbered, summarised, audited and fanned out after commit."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction

from accounts.models import IdentityKey, Professional
from audit.services import audit_event_prepare, audit_event_unchained, audit_record
from tacprotocol import actions, crypto
from tacprotocol.wire import (
    CHANGEABLE_KINDS,
    CONTENT_KINDS,
    EVENT_KINDS,
    RAG_ORDER,
)

from .. import events, storage
from ..custodian import Conflict
from ..models import (
    EpochWrap,
    Membership,
    Post,
    Workspace,
)
from ..payloads import post_payload_from_row
from ..schemas import PostEnvelope
from .checks import check_clock, due_date_checked, key_fingerprint
from .summaries import action_change, concern_change, highest_rag, summarise_action, summarise_concern


@dataclass(frozen=True)
class PostResult:
    post: Post
    created: bool  # False when the same post was sent again (idempotent retry)


# A post's common case, on PostgreSQL, in one statement (_post_plain); False sends every post the general way
# (tests run both).
ONE_STATEMENT = True
# Kinds a plain post may be: content with nothing to look up or summarise.
PLAIN_KINDS = frozenset({"update", "decision", "details"})
# Each author's current identity key as the general path last read it under the workspace's lock: what
# a plain post's signature is checked against before its one statement, which writes only if the key is
# still the author's current one. Ids and public keys only; bounded by clearing.
_current_keys: dict[int, IdentityKey] = {}
_CURRENT_KEYS_MAX = 20_000


def post_create(*, author: Professional, workspace: Workspace, envelope: PostEnvelope, request=None) -> PostResult:
    """Verify and store a post, assign its sequence number, audit it and fan it out after commit.

    Idempotent on the post id: the same bytes sent again (a retry after a lost answer) return the stored
    post without a new sequence number; a different post under a used id is refused. The stored post is
    looked for only when storing fails, so a first send costs no extra query; a retry is answered even
    if it would no longer be accepted (say the epoch has moved on since).

    The statements are hand-written (storage.py; teamaroundchild/sql.py says why). On PostgreSQL a plain
    post (an update, a decision, the child's details) is one statement (_post_plain); any other, or a
    plain one whose assumptions do not hold, is two statements and a commit
    (tests/messaging/test_post_statements.py)."""
    if ONE_STATEMENT and connection.vendor == "postgresql":
        post = _post_plain(author, workspace, envelope, request)
        if post is not None:
            return PostResult(post=post, created=True)
    try:
        with transaction.atomic():
            locked = storage.workspace_locked_for_post(workspace.pk, author.pk)
            if not locked.is_member:
                raise PermissionDenied("you are not a member of this workspace")
            workspace = locked.workspace
            post = post_store(author=author, key=locked.key, workspace=workspace, epoch_pk=locked.epoch_pk,
                              envelope=envelope, request=request, chain_head=locked.chain_head)
    except (IntegrityError, ValidationError, PermissionDenied):
        existing = Post.objects.filter(post_id=envelope.header.post_id).first()
        if existing is None:
            raise
        return _post_duplicate(existing, author, workspace, envelope)
    if len(_current_keys) >= _CURRENT_KEYS_MAX:
        _current_keys.clear()
    _current_keys[author.pk] = locked.key
    return PostResult(post=post, created=True)


def _post_plain(author: Professional, workspace: Workspace, envelope: PostEnvelope, request) -> Post | None:
    """The common post in one statement (storage.post_one_statement): checked here as post_store checks
    it, against the author's key as last read (_current_keys), then stored only if what post_store would
    have read under the lock agrees. None, having written nothing, when anything differs (another kind,
    a reply, a key not seen yet, a refused post, a workspace that has moved on): post_create then takes
    the general path, which stores it or says why not."""
    h = envelope.header
    key = _current_keys.get(author.pk)
    if (key is None or h.kind not in PLAIN_KINDS or h.author_id != author.public_id
            or h.parent_id != crypto.ZERO_ID or h.target_id != crypto.ZERO_ID or h.owner_id != crypto.ZERO_ID
            or h.rag or h.status or h.due_day or (h.prev_seq == 0) != (h.prev_hash == crypto.ZERO_HASH)):
        return None
    try:
        client_time = _signature_checked(key, envelope)
    except ValidationError:
        return None
    post = Post(workspace_id=workspace.pk, post_id=h.post_id, author=author, author_key=key, kind=h.kind,
                client_time=client_time, header=envelope.header_bytes, nonce=envelope.nonce,
                ciphertext=envelope.ciphertext, signature=envelope.signature)
    event = audit_event_unchained(kind="post.created", actor=author, request=request, target=workspace,
                                  data={"post": str(h.post_id), "kind": h.kind})
    try:
        # Inside a caller's transaction, a savepoint, so a refused statement leaves it usable.
        with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
            stored = storage.post_one_statement(post, workspace_public_id=h.workspace_id, epoch=h.epoch,
                                                prev_seq=h.prev_seq, key=key, event=event)
    except IntegrityError:  # the same post id, stored a moment ago: the general path answers it
        return None
    if stored is None:
        return None
    post._state.adding, post._state.db = False, "default"
    events.send_event_on_commit(events.workspace_group(workspace.pk), events.POST_CREATED,
                                {"workspace_pk": workspace.pk, "roster": stored.roster_version,
                                 "post": post_payload_from_row((
                                     stored.seq, post.post_id, h.workspace_id, author.public_id, key.version, h.epoch,
                                     post.kind, post.created_at, post.header, post.nonce, post.ciphertext,
                                     post.signature))})
    return post


def _post_duplicate(existing: Post, author: Professional, workspace: Workspace, envelope: PostEnvelope) -> PostResult:
    same = (existing.author_id == author.pk and existing.workspace_id == workspace.pk
            and bytes(existing.header) == envelope.header_bytes
            and bytes(existing.ciphertext) == envelope.ciphertext and bytes(existing.signature) == envelope.signature)
    if not same:
        raise Conflict("this post id is already used by another post")
    return PostResult(post=existing, created=False)


def post_store(*, author: Professional, key: IdentityKey | None, workspace: Workspace, epoch_pk: int,
                envelope: PostEnvelope, request=None, chain_head: tuple[int, int, str] | None = None) -> Post:
    """Preconditions: the caller holds SELECT ... FOR UPDATE on the workspace row (or just created it),
    has checked that the author is an active member, and passes the author's current identity key (None
    if they have none) and the id of the current epoch; and `chain_head`, the workspace's audit chain
    (id, seq, hash) if it holds it locked too, so the post, the workspace's changes and the audit event
    are written in one statement (storage.post_write); without it they are written as audit_record does."""
    h = envelope.header
    if workspace.status == Workspace.Status.CLOSED:
        raise Conflict("this workspace is closed")
    if workspace.rotation_required:
        raise Conflict("a member has left: the lead professional's device must renew the workspace keys first")
    if h.workspace_id != workspace.public_id:
        raise ValidationError("the post header names another workspace")
    if h.author_id != author.public_id:
        raise ValidationError("the post header names another author")
    if h.epoch != workspace.current_epoch:
        raise Conflict(f"posts go in the current key epoch ({workspace.current_epoch}), not {h.epoch}")
    client_time = _signature_checked(key, envelope)
    if h.prev_seq > workspace.last_seq or (h.prev_seq == 0) != (h.prev_hash == crypto.ZERO_HASH):
        raise ValidationError(f"the post says it follows #{h.prev_seq}, which is not a post of this workspace")
    if workspace.roster_keys_checked != workspace.roster_version:
        _check_epoch_covers_members(workspace, epoch_pk)

    parent = _post_ref(workspace, h.parent_id, "parent")
    target = _post_ref(workspace, h.target_id, "target")
    owner = None
    due_date = None
    if h.kind in CONTENT_KINDS and target is not None:
        raise ValidationError(f"a {h.kind} does not target another post")
    if h.kind in ("concern", "rating_change") and not h.rag:
        raise ValidationError(f"a {h.kind.replace('_', ' ')} needs a RAG rating")
    if h.kind not in ("concern", "rating_change") and h.rag:
        raise ValidationError("only concerns and rating changes carry a RAG rating")
    if h.kind == "action":
        owner = _member_by_public_id(workspace, h.owner_id, "owner")
        if owner is None:
            raise ValidationError("an action needs an owner who is a member of the workspace")
        if h.status not in ("", "open"):
            raise ValidationError("a new action is open")
        due_date = due_date_checked(h.due_day, client_time) if h.due_day else None
    elif h.kind == "action_status" and h.status == "reassigned":
        owner = _member_by_public_id(workspace, h.owner_id, "owner")
        if owner is None or h.due_day:
            raise ValidationError("a reassignment names a new owner who is a member of the workspace, and no due date")
    elif h.owner_id != crypto.ZERO_ID or h.due_day:
        raise ValidationError("only actions have an owner and a due date")
    if h.kind in EVENT_KINDS and target is None:
        raise ValidationError(f"a {h.kind} must target a post")
    if h.kind == "action_status":
        if target.kind != "action":
            raise ValidationError("an action status targets an action")
        if h.status not in actions.CHANGES:
            raise ValidationError(f"an action status is one of {', '.join(actions.CHANGES)}")
    elif h.status and h.kind != "action":
        raise ValidationError("only actions and action statuses carry a status")
    if h.kind in ("edit", "retraction") and target.author_id != author.pk:
        raise PermissionDenied(f"only the author of a post can make its {h.kind}")
    if h.kind in ("edit", "retraction") and target.kind not in CHANGEABLE_KINDS:
        raise ValidationError(f"a {h.kind} targets a concern, action, update, decision or details post")
    summary = action_change(workspace, author, target, h.status, owner) if h.kind == "action_status" else None
    concern = concern_change(workspace, author, h.kind, h.rag, target, parent)
    if h.kind == "acknowledgement" and target.kind not in CONTENT_KINDS:
        raise ValidationError("an acknowledgement targets a concern, action, update, decision or details post")
    if h.kind == "history_shared" and author.pk != workspace.lead_id:
        raise PermissionDenied("only the lead professional shares the earlier record")

    seq = workspace.last_seq + 1
    post = Post(
        workspace=workspace, seq=seq, post_id=h.post_id, author=author, author_key=key, epoch_id=epoch_pk, kind=h.kind,
        rag=h.rag, status=h.status or ("open" if h.kind == "action" else ""), owner=owner, due_date=due_date,
        parent=parent, target=target, client_time=client_time, header=envelope.header_bytes, nonce=envelope.nonce,
        ciphertext=envelope.ciphertext, signature=envelope.signature,
    )
    changes = {"last_seq": seq,
               # Checked above against this roster; wraps are only ever added, so it holds until the roster moves.
               "roster_keys_checked": workspace.roster_version}
    if h.kind == "concern":
        # The highest RAG of the concerns not retracted: a new concern can only raise it.
        changes["current_rag"] = max(workspace.current_rag, h.rag, key=lambda r: RAG_ORDER[r])
    rating_was = concern.rag if concern is not None and h.kind == "rating_change" else None
    audited = {"kind": "post.created", "actor": author, "request": request, "target": workspace,
               "data": {"seq": seq, "post": str(h.post_id), "kind": h.kind,
                        **({"status": h.status} if h.kind == "action_status" else {}),
                        # A rating change's old and new ratings (its reason is in the encrypted body).
                        **({"from": rating_was, "to": h.rag} if rating_was is not None else {})}}
    # Hand-written statements (storage.py): the rows Post.objects.create(), workspace.save() and
    # audit_record would write, at a tenth of the CPU, and on PostgreSQL in one round trip.
    if chain_head is not None:
        storage.post_write(post, workspace.pk, changes, audit_event_prepare(head=chain_head, **audited))
    else:
        post.pk = storage.post_insert(post)
        storage.workspace_update(workspace.pk, changes)
        audit_record(**audited)
    post._state.adding, post._state.db = False, "default"
    for name, value in changes.items():
        setattr(workspace, name, value)
    # The summaries refer to the stored post; a change of a concern's rating (or its retraction) moves the
    # workspace's highest rating, which reads the summaries as they now are: one more statement, for those.
    summarise_concern(post, workspace, author, concern)
    if h.kind == "rating_change" or (h.kind == "retraction" and target.kind == "concern"):
        workspace.current_rag = highest_rag(workspace)
        storage.workspace_update(workspace.pk, {"current_rag": workspace.current_rag})
    summarise_action(post, summary, author)
    events.send_event_on_commit(events.workspace_group(workspace.pk), events.POST_CREATED,
                                {"workspace_pk": workspace.pk, "roster": workspace.roster_version,
                                 "post": post_payload_from_row((
                                     seq, post.post_id, workspace.public_id, author.public_id, key.version, h.epoch,
                                     post.kind, post.created_at, post.header, post.nonce, post.ciphertext,
                                     post.signature))})
    return post


def _signature_checked(key: IdentityKey | None, envelope: PostEnvelope) -> dt.datetime:
    """The header names `key` (the author's current key), the signature verifies with it, and the signed
    time is within the allowed skew: that time. ValidationError, saying which, otherwise."""
    h = envelope.header
    if key is None or h.author_fingerprint != key_fingerprint(key):
        raise ValidationError("the post header's author key is not your current key")
    if not crypto.post_verify(bytes(key.sign_public), envelope.header_bytes, envelope.nonce, envelope.ciphertext,
                              envelope.signature):
        raise ValidationError("the post signature does not verify")
    return check_clock(h.client_time_ms, "post's")


def _check_epoch_covers_members(workspace: Workspace, epoch_pk: int) -> None:
    """No member is left unable to decrypt: every active member holds a wrap of this epoch (under their
    current key, or an older one a colleague's client will re-key)."""
    members = set(Membership.objects.filter(workspace=workspace, state=Membership.State.ACTIVE,
                                            professional__is_active=True).values_list("professional_id", flat=True))
    wrapped = set(EpochWrap.objects.filter(epoch_id=epoch_pk, recipient__isnull=False).values_list("recipient_id",
                                                                                                flat=True))
    if not members <= wrapped:
        raise Conflict("the current key epoch is not wrapped for every member: the lead's device must renew the keys")
    if not EpochWrap.objects.filter(epoch_id=epoch_pk, custodian_key__isnull=False).exists():
        raise Conflict("the current key epoch is not wrapped for the custodian")


def _post_ref(workspace: Workspace, post_id: uuid.UUID, what: str) -> Post | None:
    if post_id == crypto.ZERO_ID:
        return None
    post = Post.objects.filter(workspace=workspace, post_id=post_id).first()
    if post is None:
        raise ValidationError(f"the {what} post is not in this workspace")
    return post


def _member_by_public_id(workspace: Workspace, public_id: uuid.UUID, what: str) -> Professional | None:
    if public_id == crypto.ZERO_ID:
        return None
    membership = Membership.objects.filter(workspace=workspace, professional__public_id=public_id,
                                           state=Membership.State.ACTIVE).select_related("professional").first()
    return membership.professional if membership else None
