"""A workspace's thread as a reader assembles it from verified posts: the twin of the browser's
frontend/static/tac/record.js. The server orders and numbers posts, and may delete, replay, renumber or
reorder them; each post's signed header names the newest post its author had seen (`prev_seq`,
`prev_hash`), so a reader can tell (docs/crypto.md, "The post chain"):

  - a gap: a number missing where this reader holds every key epoch it could be in, or a post that
    follows one the server has not shown;
  - a change: a post that follows #N as its author saw it, where the server's #N is another post;
  - reordering: a post that follows one numbered after it, or an epoch older than the post before it;
  - a replay: the same post id again under a new number (shown once);
  - a rollback: fewer posts, or another post at the newest number, than this professional's devices saw.

Changes of state are applied in signed causal order: a post after the one it follows (and so after all
that one follows), and otherwise in the server's order. An honest server's order is causal already, so a
reader judges each change where the server judged it, even one whose author had not read the newest
posts; a server that numbers a post before the one it follows does not move it. They are applied only by
whoever may make them: an edit or retraction by the post's author, an action's status
as tacprotocol/actions.py's rule allows it at that point (the owner then, the lead the epoch's manifest
names), a concern's rating by its author or the lead the change's epoch names (to another rating than
the one it has at that point, and not after its retraction), an acknowledgement by the member who
signed it. What the rule refuses is ignored and said."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from . import actions, crypto
from .wire import CONTENT_KINDS
from .workspace import OpenedPost, TrustError, WorkspaceKeys, b64d, b64e, open_post


@dataclass
class Entry:
    """One post as shown: opened, or refused (`refused` says why) and shown as such, never dropped."""

    seq: int
    post_id: str
    payload: dict
    opened: OpenedPost | None = None
    refused: str | None = None
    hash: bytes | None = None
    epoch: int | None = None
    notes: list[str] = field(default_factory=list)
    depth: int = 0
    # The causal order's key (see causal_key): the highest number among this post and those it follows.
    rank: int = 0
    # For concerns, actions, updates, decisions and details: what later posts did to it.
    rag: str = ""  # a concern's rating now: the signed one until a rating change
    ratings: list[RatingChange] = field(default_factory=list)  # the rating changes applied, in causal order
    status: str = ""
    status_by: uuid.UUID | None = None
    owner: uuid.UUID | None = None  # an action's owner now: the signed one until a reassignment
    acks: dict[uuid.UUID, int] = field(default_factory=dict)
    events: list[Entry] = field(default_factory=list)  # the changes applied, in signed causal order
    body: dict | None = None  # the current body: the last edit's, else the post's own
    retracted_by: Entry | None = None
    # For an action_status or rating_change post: why the rule refused it where it stands in causal order
    # (not applied).
    ignored: str | None = None
    # Every change that reached this post, applied or not, and the notes _resolve wrote (rewritten each
    # time it runs, since a post arriving late can move a change to another point in the order).
    received: list[Entry] = field(default_factory=list, repr=False)
    resolved_notes: list[str] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.opened is not None

    @property
    def header(self) -> crypto.PostHeader | None:
        return self.opened.header if self.opened else None

    @property
    def kind(self) -> str:
        return self.opened.header.kind if self.opened else str(self.payload.get("kind", ""))

    @property
    def author(self) -> uuid.UUID | None:
        return self.opened.header.author_id if self.opened else None

    @property
    def due(self) -> dt.date | None:
        h = self.header
        return dt.date(1970, 1, 1) + dt.timedelta(days=h.due_day) if h is not None and h.due_day else None

    def overdue(self, today: dt.date) -> bool:
        return self.kind == "action" and self.retracted_by is None and actions.overdue(self.status, self.due, today)

    def causal_key(self) -> tuple:
        h = self.opened.header
        # Parents sort first (a parent's rank is at most its child's, and its depth less); for an honest
        # server, whose posts follow earlier numbers, rank is the post's own number: the server's order.
        return (self.rank, self.depth, h.client_time_ms, self.seq)

    def _note(self, text: str) -> None:
        self.notes.append(text)
        self.resolved_notes.append(text)


@dataclass(frozen=True)
class RatingChange:
    """A concern's change of rating as applied: from `old` to `new`, why (the encrypted reason), by whom and
    when they signed it. `entry` is the rating_change post."""

    old: str
    new: str
    reason: str
    by: uuid.UUID
    client_time_ms: int
    entry: Entry = field(repr=False)

    @property
    def signed_time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.client_time_ms / 1000, tz=dt.UTC)


def _raw_hash(payload: dict) -> bytes | None:
    try:
        return crypto.post_hash(b64d(payload["header"]), b64d(payload["nonce"]), b64d(payload["ciphertext"]))
    except (KeyError, TypeError, TrustError):
        return None


def _raw_epoch(payload: dict) -> int | None:
    try:
        return crypto.PostHeader.from_bytes(b64d(payload["header"])).epoch
    except (KeyError, TypeError, ValueError, TrustError):
        return None


class Record:
    """Add posts in the order the server sends them (`add`); read `entries`, `warnings` and `problems`.
    `problems` are those that stop this client posting (the record was rolled back or hides keys)."""

    def __init__(self, keys: WorkspaceKeys, *, reference: str | None = None, name_of=None):
        self.keys = keys
        self.name_of = name_of or str
        self.reference = reference
        self.entries: list[Entry] = []
        self.by_id: dict[str, Entry] = {}
        self.by_seq: dict[int, Entry] = {}
        self.by_hash: dict[bytes, Entry] = {}
        self.children: dict[bytes, list[Entry]] = {}
        self.warnings: list[str] = []
        self.problems: list[str] = []
        self.last: tuple[int, bytes] | None = None  # the newest verified post: what the next post follows

    # --- reading ---

    def content(self) -> list[Entry]:
        return [e for e in self.entries if e.ok and e.kind in CONTENT_KINDS]

    def get(self, post_id) -> Entry | None:
        return self.by_id.get(str(post_id))

    def posts_in_epoch(self, epoch: int) -> int:
        return sum(1 for e in self.entries if e.epoch == epoch)

    def latest_details(self) -> Entry | None:
        found = [e for e in self.entries if e.ok and e.kind == "details" and e.retracted_by is None]
        return found[-1] if found else None

    # --- adding ---

    def add(self, payload: dict) -> Entry:
        seq = payload.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            seq = 0
        entry = Entry(seq=seq, post_id=str(payload.get("post_id", "")), payload=payload, hash=_raw_hash(payload),
                      epoch=_raw_epoch(payload))
        try:
            entry.opened = open_post(payload, self.keys, details_reference=self.reference)
        except TrustError as exc:
            entry.refused = str(exc)
            if entry.epoch is not None and entry.epoch not in self.keys.manifests:
                self._problem(f"The server sent post #{seq} from a key epoch it has not shown this device: it may be "
                              f"hiding a change of keys. Posting is stopped until this is resolved.")
        before = self.entries[-1] if self.entries else None
        if before is not None and seq <= before.seq:
            entry.notes.append(f"The server sent #{seq} after #{before.seq}: out of order")
        if entry.ok and entry.post_id in self.by_id and self.by_id[entry.post_id].ok:
            first = self.by_id[entry.post_id]
            self.warnings.append(f"The server sent post #{first.seq} again as #{seq}: it is shown once.")
            entry.notes.append(f"A copy of #{first.seq}")
            entry.refused = entry.refused or f"a replayed copy of #{first.seq}"
            entry.opened = None
            self._store(entry, link=False)
            return entry
        self._check_gap(before, entry)
        if entry.ok:
            self._check_chain(entry)
            if entry.opened.time_note:
                entry.notes.append(entry.opened.time_note[0].upper() + entry.opened.time_note[1:])
        self._store(entry, link=entry.ok)
        if entry.ok:
            self.last = (entry.seq, entry.hash)
            self._apply(entry)
        return entry

    def check_memory(self, memory: dict | None) -> None:
        """After the backlog: the newest post this professional's devices saw must still be there."""
        if not memory or not memory.get("seq"):
            return
        seq, post = memory["seq"], memory.get("post")
        newest = self.entries[-1].seq if self.entries else 0
        if newest < seq:
            self._problem(f"Your devices saw posts up to #{seq} here, but the server now shows only up to #{newest}: "
                          f"posts have been withheld or deleted. Posting is stopped.")
        elif post and seq in self.by_seq and self.by_seq[seq].hash != b64d(post):
            self._problem(f"Post #{seq} is not the post your devices saw under that number: the record has been "
                          f"changed. Posting is stopped.")

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def _store(self, entry: Entry, *, link: bool) -> None:
        entry.rank = entry.seq
        self.entries.append(entry)
        self.by_seq.setdefault(entry.seq, entry)
        if entry.post_id not in self.by_id or (entry.ok and not self.by_id[entry.post_id].ok):
            self.by_id[entry.post_id] = entry
        if not link or entry.hash is None:
            return
        self.by_hash[entry.hash] = entry
        parent = self.by_hash.get(entry.opened.header.prev_hash)
        linked = parent is not None and parent is not entry
        entry.depth = parent.depth + 1 if linked else 0
        entry.rank = max(entry.seq, parent.rank) if linked else entry.seq
        self.children.setdefault(entry.opened.header.prev_hash, []).append(entry)
        # Posts that arrived before the one they follow (the server reordered them): fix their place.
        stack = [entry]
        moved: set[str] = set()
        while stack:
            node = stack.pop()
            for child in self.children.get(node.hash, []):
                if child is not node and (child.depth <= node.depth or child.rank < node.rank):
                    child.depth = max(child.depth, node.depth + 1)
                    child.rank = max(child.rank, node.rank)
                    moved.add(child.post_id)
                    stack.append(child)
        for post_id in moved:
            target = self.by_id.get(str(self.by_id[post_id].opened.header.target_id))
            if target is not None:
                self._resolve(target)

    def _held(self, low: int, high: int) -> bool:
        return all(n in self.keys.epoch_keys for n in range(max(low, 1), high + 1))

    def _epoch_before(self, seq: int) -> int:
        earlier = [e for e in self.entries if e.seq < seq and e.epoch is not None]
        return earlier[-1].epoch if earlier else 1

    def _check_gap(self, before: Entry | None, entry: Entry) -> None:
        if entry.epoch is None:
            return
        start = before.seq + 1 if before is not None else 1
        low = before.epoch if before is not None and before.epoch is not None else 1
        if entry.seq > start and self._held(low, entry.epoch):
            missing = f"#{start}" if entry.seq - 1 == start else f"#{start} to #{entry.seq - 1}"
            self.warnings.append(f"Posts {missing} are missing: the server has not shown them, although this device "
                                 f"holds the keys they were made with.")
        if before is not None and before.epoch is not None and entry.epoch < before.epoch:
            entry.notes.append(f"From key epoch {entry.epoch}, after a post from epoch {before.epoch}: the server "
                               f"changed the order")

    def _check_chain(self, entry: Entry) -> None:
        h = entry.opened.header
        if h.prev_seq == 0:
            if h.prev_hash != crypto.ZERO_HASH:
                entry.notes.append("It names a previous post's hash but no number")
            return
        if h.prev_seq >= entry.seq:
            entry.notes.append(f"Its author wrote it after #{h.prev_seq}, which the server numbered after it: the "
                               f"order was changed")
            return
        seen = self.by_seq.get(h.prev_seq)
        if seen is not None:
            if seen.hash != h.prev_hash:
                entry.notes.append(f"Its author wrote it after a post numbered #{h.prev_seq}, but the server's #{h.prev_seq}"
                                   f" is a different post: the record was changed or renumbered")
        elif self._held(self._epoch_before(h.prev_seq), h.epoch):
            entry.notes.append(f"Its author wrote it after #{h.prev_seq}, which the server has not shown: a post may "
                               f"have been deleted")

    # --- what posts do to each other ---

    def _apply(self, entry: Entry) -> None:
        h = entry.opened.header
        if h.kind in CONTENT_KINDS:
            entry.body, entry.rag = entry.opened.body, h.rag
            if h.kind == "action":
                entry.status, entry.owner = "open", h.owner_id
                if h.status not in ("", "open"):
                    entry.notes.append(f"It was signed as {h.status}, but a new action is open: it is shown as open")
            return
        target = self.by_id.get(str(h.target_id))
        if target is None or not target.ok:
            entry.notes.append("It refers to a post this device has not been shown")
            return
        if target.kind not in CONTENT_KINDS:
            entry.notes.append("It refers to a post that cannot be changed")
            return
        author, target_author = h.author_id, target.header.author_id
        who = self._name(author)
        if h.kind in ("edit", "retraction") and author != target_author:
            change = "An edit" if h.kind == "edit" else "A retraction"
            target.notes.append(f"{change} signed by {who}, who did not write this post, was ignored")
            entry.notes.append(f"Ignored: only the author of #{target.seq} may make its {h.kind}")
            return
        if h.kind == "action_status" and target.kind != "action":
            entry.notes.append("A status change for a post that is not an action was ignored")
            return
        if h.kind == "rating_change":
            if target.kind != "concern":
                entry.notes.append("A rating change for a post that is not a concern was ignored")
                return
            # Who may is fixed by the post itself (its author, its epoch's lead), wherever it stands in order.
            if author != target_author and author != self._lead(h.epoch):
                target.notes.append(f"A rating change signed by {who}, who neither raised this concern nor leads the "
                                    f"workspace, was ignored")
                entry.notes.append(f"Ignored: only the author of #{target.seq} or the lead professional may change its "
                                   f"rating")
                return
        if h.kind == "acknowledgement" and author in target.acks:
            return  # acknowledged already: one line per member
        # A status change is judged in _resolve: whether the rule allows it depends on where it stands in
        # causal order, which a post that arrives later can still change.
        target.received.append(entry)
        self._resolve(target)

    def _resolve(self, target: Entry) -> None:
        """Recompute a post's state from what reached it, in signed causal order: an action's status and
        owner by tacprotocol/actions.py's rule, a concern's rating, change after change."""
        ordered = sorted(target.received, key=Entry.causal_key)
        target.received = ordered
        for e in (target, *ordered):
            for note in e.resolved_notes:
                e.notes.remove(note)
            e.resolved_notes = []
        target.events = []
        target.body = target.opened.body
        target.retracted_by = None
        target.acks = {}
        target.rag, target.ratings = target.opened.header.rag, []
        state = None
        if target.kind == "action":
            state = actions.ActionState("open", target.opened.header.owner_id)
            target.status_by = None
        for e in ordered:
            h = e.opened.header
            if h.kind == "action_status":
                after, why = self._status_change(target, state, e)
                e.ignored = why or None
                if after is None:
                    continue
                state, target.status_by = after, h.author_id
            elif h.kind == "rating_change":
                e.ignored = self._rating_refused(target, e) or None
                if e.ignored:
                    continue
                reason = e.opened.body.get("reason")
                target.ratings.append(RatingChange(old=target.rag, new=h.rag, reason=reason if isinstance(reason, str) else "",
                                                   by=h.author_id, client_time_ms=h.client_time_ms, entry=e))
                target.rag = h.rag
            elif h.kind == "edit":
                target.body = e.opened.body
            elif h.kind == "retraction":
                target.retracted_by = e
            elif h.kind == "acknowledgement":
                if h.author_id in target.acks:
                    continue
                target.acks[h.author_id] = e.seq
            target.events.append(e)
        if state is not None:
            target.status, target.owner = state.status, state.owner

    def _lead(self, epoch: int) -> uuid.UUID | None:
        """The lead professional when a change was made: the one its epoch's signed manifest names."""
        return self.keys.lead(epoch) if epoch in self.keys.manifests else None

    def _rating_refused(self, target: Entry, e: Entry) -> str:
        """Why rating change `e` does not apply where it stands in causal order ("" if it does), with the notes
        that say so. Who may make it was judged when it arrived (_apply)."""
        h = e.opened.header
        if target.retracted_by is not None:
            why = "the concern was retracted: its rating no longer changes"
        elif not h.rag:
            why = "a rating change names the new rating"
        elif h.rag == target.rag:
            why = f"the concern is already {h.rag}"
        else:
            return ""
        target._note(f"A change of rating to {h.rag or 'none'} signed by {self._name(h.author_id)} (#{e.seq}) was "
                     f"ignored: {why}")
        e._note(f"Ignored: {why}")
        return why

    def _status_change(self, target: Entry, state: actions.ActionState,
                       e: Entry) -> tuple[actions.ActionState | None, str]:
        """The action's state after status change `e`, or (None, why), with the notes that say so."""
        h = e.opened.header
        lead = self._lead(h.epoch)
        new_owner = None if h.owner_id == crypto.ZERO_ID else h.owner_id
        if target.retracted_by is not None:
            after, why = None, "the action was retracted: its status no longer changes"
        elif h.status == "reassigned" and new_owner is not None and new_owner not in self.keys.members(h.epoch):
            after, why = None, "a reassignment names a member of the workspace"
        else:
            after, why = actions.change(state, status=h.status, author=h.author_id, lead=lead, new_owner=new_owner)
        if after is not None:
            return after, ""
        who = self._name(h.author_id)
        if h.status in actions.RULES and actions.RULES[h.status][1] == (actions.OWNER, actions.LEAD) \
                and not actions.may(state, h.status, h.author_id, lead):
            target._note(f"A status change signed by {who}, who neither owns this action nor leads the workspace, "
                         f"was ignored")
            e._note(f"Ignored: only the owner of #{target.seq} or the lead professional may change its status")
        else:
            target._note(f"A change to {h.status or 'no status'} signed by {who} (#{e.seq}) was ignored: {why}")
            e._note(f"Ignored: {why}")
        return None, why

    def _name(self, public_id: uuid.UUID) -> str:
        return self.name_of(public_id)


def memory_last(record: Record) -> tuple[int, str] | None:
    return (record.last[0], b64e(record.last[1])) if record.last else None
