"""Workspaces, membership, key epochs and posts. The server holds ciphertext, public keys, signatures and
the plaintext metadata PRODUCT.md lists (kind, RAG, owner, due date, status, times, author, parent,
sequence); never an epoch key or anything a professional wrote in words. docs/crypto.md gives the bytes.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class CustodianKey(models.Model):
    """The data controller's recovery key: every epoch key is also sealed to it. Its private half is split
    2-of-3 among records custodians (`manage.py custodian_key_create`) and never stored anywhere online."""

    box_public = models.BinaryField(max_length=32)
    # The Ed25519 half (derived from the same secret, crypto.custodian_identity): it signs its successor.
    sign_public = models.BinaryField(max_length=32)
    key_id = models.BinaryField(max_length=32, unique=True)
    label = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    is_current = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["is_current"], condition=Q(is_current=True), name="one_current_custodian_key")
        ]

    def __str__(self) -> str:
        return f"custodian key {self.label}"


class Workspace(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        STEPPED_DOWN = "stepped_down", "Stepped down"
        CLOSED = "closed", "Closed"

    public_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(max_length=32, unique=True)
    lead = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="workspaces_led")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Highest RAG of the concerns not retracted: "" none, else green / amber / red.
    current_rag = models.CharField(max_length=8, blank=True)
    current_epoch = models.PositiveIntegerField(default=0)
    # Set when a member left: the lead's client must start a new epoch before anyone posts again.
    rotation_required = models.BooleanField(default=False)
    last_seq = models.PositiveBigIntegerField(default=0)
    # Bumped, under the workspace's row lock, whenever the set of active members or the key epoch
    # changes. Posts carry it in their live event, so a socket re-checks membership only when it moved
    # (docs/protocol.md, "Delivery").
    roster_version = models.PositiveBigIntegerField(default=0)
    # The roster_version at which the current epoch was last found wrapped for every active member:
    # post_create repeats that check only when the roster has changed since.
    roster_keys_checked = models.BigIntegerField(default=-1)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.reference


class ReferenceCounter(models.Model):
    """Per-year counter for workspace references (TAC-2026-0042), locked to hand out the next."""

    year = models.PositiveIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class Membership(models.Model):
    class Role(models.TextChoices):
        LEAD = "lead", "Lead professional"
        # Named by the lead in a signed manifest: may start key epochs, and takes the lead if the lead
        # leaves (docs/crypto.md, "Lead continuity").
        DEPUTY = "deputy", "Deputy lead"
        MEMBER = "member", "Member"
        OVERSIGHT = "oversight", "Oversight"

    class State(models.TextChoices):
        INVITED = "invited", "Invited"
        # Accepted, waiting for the lead's client to include them in a new key epoch.
        ACCEPTED = "accepted", "Accepted, waiting for keys"
        ACTIVE = "active", "Active"
        DECLINED = "declined", "Declined"
        LEFT = "left", "Left"
        REMOVED = "removed", "Removed"

    CURRENT_STATES = (State.INVITED, State.ACCEPTED, State.ACTIVE)

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="memberships")
    professional = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    state = models.CharField(max_length=16, choices=State.choices, default=State.INVITED)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    invited_at = models.DateTimeField(default=timezone.now)
    # The lead's Ed25519 signature over crypto.invite_statement (workspace, member, fingerprint, role, the
    # epoch current when invited, a random nonce): single use, and bound to the key invited.
    invite_signature = models.BinaryField(max_length=64, null=True, blank=True)
    invite_epoch = models.PositiveIntegerField(null=True, blank=True)
    invite_nonce = models.BinaryField(max_length=16, null=True, blank=True)
    joined_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    # The first epoch this member was given; earlier epochs only through an audited history grant.
    first_epoch = models.PositiveIntegerField(null=True, blank=True)
    history_shared = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    # The highest sequence this member has seen (read position, for unread counts).
    last_read_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "professional"],
                condition=Q(state__in=["invited", "accepted", "active"]),
                name="one_current_membership",
            )
        ]
        indexes = [models.Index(fields=["professional", "state"])]

    def __str__(self) -> str:
        return f"{self.professional_id} in {self.workspace_id} ({self.state})"


class Epoch(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="epochs")
    number = models.PositiveIntegerField()
    manifest = models.BinaryField()
    manifest_signature = models.BinaryField(max_length=64)
    manifest_hash = models.BinaryField(max_length=32)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signer_key = models.ForeignKey("accounts.IdentityKey", on_delete=models.PROTECT, related_name="+")
    custodian_key = models.ForeignKey(CustodianKey, on_delete=models.PROTECT, related_name="epochs")
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    # The workspace's last_seq when this epoch began. Posts go only in the current epoch, so the
    # epoch's posts are exactly the sequence numbers after it, until the next epoch's start_seq.
    start_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "number"], name="epoch_number_unique")]

    def __str__(self) -> str:
        return f"{self.workspace_id} epoch {self.number}"


class LeadAppointment(models.Model):
    """The custodians' signed word that, after epoch `after_epoch` (whose manifest hashes to
    `manifest_hash`), `appointee` leads: for a workspace whose lead has gone with no deputy left. Signed
    offline with the custodian key's Ed25519 half (crypto.lead_appointment_statement; `tac custodian
    appoint`), installed by `manage.py lead_appointment_install`. Clients check it against their pin."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="lead_appointments")
    after_epoch = models.PositiveIntegerField()
    manifest_hash = models.BinaryField(max_length=32)
    appointee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    fingerprint = models.BinaryField(max_length=32)
    created_ms = models.BigIntegerField()
    signature = models.BinaryField(max_length=64)
    custodian_key = models.ForeignKey(CustodianKey, on_delete=models.PROTECT, related_name="+")
    installed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "after_epoch"], name="one_appointment_per_epoch")]

    def __str__(self) -> str:
        return f"{self.workspace_id} lead appointed after epoch {self.after_epoch}"


class EpochWrap(models.Model):
    """An epoch key sealed to one identity key (a member's) or to the custodian key."""

    class Reason(models.TextChoices):
        MANIFEST = "manifest", "In the epoch's signed manifest"
        REKEY = "rekey", "Re-keyed after a password reset"
        HISTORY = "history", "Earlier history shared with a late joiner"

    epoch = models.ForeignKey(Epoch, on_delete=models.PROTECT, related_name="wraps")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="epoch_wraps", null=True, blank=True
    )
    recipient_key = models.ForeignKey(
        "accounts.IdentityKey", on_delete=models.PROTECT, related_name="epoch_wraps", null=True, blank=True
    )
    custodian_key = models.ForeignKey(CustodianKey, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    sealed = models.BinaryField(max_length=128)
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.MANIFEST)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["epoch", "recipient_key"], name="one_wrap_per_key"),
            models.CheckConstraint(
                condition=Q(recipient_key__isnull=False) | Q(custodian_key__isnull=False), name="wrap_has_recipient"
            ),
        ]

    def __str__(self) -> str:
        return f"wrap of {self.epoch_id} for {self.recipient_id or 'custodian'}"


class Post(models.Model):
    """An append-only record. Changes of state (status, acknowledgement, edit, retraction) are posts too,
    pointing at their target; nothing here is ever updated after it is stored."""

    class Kind(models.TextChoices):
        CONCERN = "concern", "Concern"
        ACTION = "action", "Action"
        UPDATE = "update", "Update"
        DECISION = "decision", "Decision"
        DETAILS = "details", "Child's details"
        ACTION_STATUS = "action_status", "Action status"
        ACKNOWLEDGEMENT = "acknowledgement", "Acknowledgement"
        EDIT = "edit", "Edit"
        RETRACTION = "retraction", "Retraction"
        HISTORY_SHARED = "history_shared", "Earlier record shared"
        RATING_CHANGE = "rating_change", "Rating change"

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="posts")
    seq = models.PositiveBigIntegerField()
    post_id = models.UUIDField(unique=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="posts")
    author_key = models.ForeignKey("accounts.IdentityKey", on_delete=models.PROTECT, related_name="+")
    epoch = models.ForeignKey(Epoch, on_delete=models.PROTECT, related_name="posts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    rag = models.CharField(max_length=8, blank=True)
    status = models.CharField(max_length=16, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="actions_owned", null=True, blank=True
    )
    due_date = models.DateField(null=True, blank=True)
    parent = models.ForeignKey("self", on_delete=models.PROTECT, related_name="replies", null=True, blank=True)
    target = models.ForeignKey("self", on_delete=models.PROTECT, related_name="events", null=True, blank=True)
    client_time = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    header = models.BinaryField()
    nonce = models.BinaryField(max_length=24)
    ciphertext = models.BinaryField()
    signature = models.BinaryField(max_length=64)

    class Meta:
        ordering = ["workspace", "seq"]
        constraints = [models.UniqueConstraint(fields=["workspace", "seq"], name="post_seq_unique")]
        indexes = [models.Index(fields=["workspace", "kind"]), models.Index(fields=["owner", "kind"])]

    def __str__(self) -> str:
        return f"{self.workspace_id}#{self.seq} {self.kind}"


class ActionSummary(models.Model):
    """Where each action stands now, from its metadata (owner, due date, status: all in signed headers the
    server reads), kept in the same transaction as the post that moves it (services.post_create), so
    that nothing asking "what is overdue" reads the posts. The posts stay the record; this row is a
    summary of them that tacprotocol/actions.py's rule keeps, and the readers check for themselves."""

    action = models.OneToOneField(Post, on_delete=models.PROTECT, primary_key=True, related_name="summary")
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="action_summaries")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="action_summaries")
    status = models.CharField(max_length=16)
    due_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    retracted = models.BooleanField(default=False)
    updated_at = models.DateTimeField()
    last_change_seq = models.PositiveBigIntegerField()
    # The owner's agency, kept with the owner, so managers' dashboards count by agency without a join.
    owner_agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="+")
    # The action's clock (oversight/clocks.py), from its due date: when the owner is reminded, when it is
    # overdue (the owner and the lead are told), when the owner's managers are told. The *_sent_at
    # columns say the clock job has done it, once.
    remind_at = models.DateTimeField(null=True, blank=True)
    breach_at = models.DateTimeField(null=True, blank=True)
    escalate_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    breach_sent_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "status"]), models.Index(fields=["workspace", "status"]),
                   models.Index(fields=["status", "due_date"]), models.Index(fields=["owner_agency", "status"]),
                   models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"action {self.action_id}: {self.status}"


class ConcernSummary(models.Model):
    """Where each concern stands now: its current rating (the concern's own, then each rating change) and
    its response clock, kept in the same transaction as the post that moves it (services.post_create).

    The clock runs from the concern (or from a rating change by anyone but the lead) until the lead of
    the time responds: acknowledges it, replies to it, posts an action or decision on it, or changes its
    rating. A concern the lead raised needs no answer from them. `due_at` comes from the rating's
    timescale (oversight/clocks.py); the clock job sets `breached_at` once when it passes unanswered."""

    concern = models.OneToOneField(Post, on_delete=models.PROTECT, primary_key=True, related_name="concern_summary")
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="concern_summaries")
    author_agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="+")
    rag = models.CharField(max_length=8)
    raised_at = models.DateTimeField()
    clock_started_at = models.DateTimeField()
    due_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    # How many of this concern's clocks ran out (a rating change by anyone but the lead starts a new one).
    breach_count = models.PositiveIntegerField(default=0)
    retracted = models.BooleanField(default=False)
    updated_at = models.DateTimeField()
    last_change_seq = models.PositiveBigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "rag"]), models.Index(fields=["raised_at"]),
                   models.Index(fields=["due_at"], name="concern_clock_running",
                                condition=Q(responded_at__isnull=True, breached_at__isnull=True, retracted=False))]

    def __str__(self) -> str:
        return f"concern {self.concern_id}: {self.rag}"


class ConcernAcknowledgement(models.Model):
    """The first acknowledgement of a concern by each agency, with how long it took and the concern's
    rating then: what the managers' "time to acknowledge red concerns" reads."""

    concern = models.ForeignKey(ConcernSummary, on_delete=models.PROTECT, related_name="acknowledgements")
    agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="+")
    rag = models.CharField(max_length=8)
    acknowledged_at = models.DateTimeField()
    seconds = models.PositiveBigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["concern", "agency"], name="one_first_ack_per_agency")]
        indexes = [models.Index(fields=["agency", "rag", "acknowledged_at"])]

    def __str__(self) -> str:
        return f"{self.agency_id} acknowledged {self.concern_id}"


class KeyConfirmation(models.Model):
    """A professional's signed statement that they compared a colleague's safety number with them (in
    person or by phone) and it is this key (crypto.key_confirmation_statement). Clients wrap epoch keys
    only for keys a manifest lists or a current member confirmed; the server stores and relays these, and
    cannot make one."""

    confirmer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    confirmer_key = models.ForeignKey("accounts.IdentityKey", on_delete=models.PROTECT, related_name="+")
    subject = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="key_confirmations")
    subject_key = models.ForeignKey("accounts.IdentityKey", on_delete=models.PROTECT, related_name="confirmations")
    confirmed_ms = models.PositiveBigIntegerField()
    signature = models.BinaryField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["confirmer", "subject_key"], name="one_confirmation_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.confirmer_id} confirmed key {self.subject_key_id}"


class ClientState(models.Model):
    """What a professional's own clients remember (tacclient/memory.py): encrypted and signed under their
    identity key, so the server can withhold or replay an older copy but never read or alter it. Tied to
    the identity key that sealed it: after a password reset (new keys) the old copy cannot be opened and
    is not served."""

    professional = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="client_state")
    identity_key = models.ForeignKey("accounts.IdentityKey", on_delete=models.CASCADE, related_name="+")
    version = models.PositiveBigIntegerField()
    blob = models.BinaryField()
    signature = models.BinaryField(max_length=64)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"saved state v{self.version} of {self.professional_id}"
