"""W6: the managers' dashboard at scale (issue 10, item 7): `python -m bench.w6 generate`, then
`python -m bench.w6 measure`.

generate: a PostgreSQL database of its own (`tac_bench_w6`: created, migrated, filled), written directly
with COPY (binary, through psycopg) rather than through the services: agencies, professionals (a few
managers per agency, two partnership leads; unusable passwords), identity keys, workspaces with 4-8
members and one key epoch each, posts of a realistic kind mix whose header, nonce, ciphertext and
signature are random bytes of the sizes real ones have (the dashboard never reads them: the target is
that no dashboard query reads the posts table, so it must really hold them), and the summary rows
services.post_create keeps with them (ActionSummary, ConcernSummary, ConcernAcknowledgement) consistent
with those posts: every action has its summary, every status change is a post that targets its action,
every first acknowledgement by an agency is an acknowledgement post. Times spread over the last 16
weeks. Every foreign key and unique constraint holds (PostgreSQL checks them as the rows go in). An
existing database with the same counts is reused; any other is dropped and made again.

measure: for a sample of viewers (managers of several agencies and a partnership lead) and filter
combinations, the dashboard page's queries (the filter form's choices, oversight.selectors.dashboard and
.trends, as oversight/views.py::dashboard runs them; not the template), timed N times after a warm-up:
p50/p95/p99. Around them, floors: a `SELECT 1` round trip and a `count(*)` of the action summaries, before
and after, since this machine's speed drifts (BENCHMARKS.md). Rows go to the results file that
bench.report prints."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

from django.utils import timezone

from oversight import clocks
from tacprotocol import crypto
from tacprotocol.wire import CONTENT_KINDS, RAG_ORDER

from .common import apply_env
from .run import cpu_of, cpu_self, ms, pct

DB_DEFAULT = "tac_bench_w6"
HOST_URL = "postgres://postgres@127.0.0.1:5432"
RESULTS = "/tmp/tac_bench/results.jsonl"

# Agencies by kind: (kind, how many, staff weight). The last is the safeguarding partnership's.
AGENCY_PLAN = [("childrens_social_care", 4, 3.0), ("gp_practice", 5, 0.6), ("maternity", 2, 1.0),
               ("health_visiting", 2, 1.0), ("school", 4, 0.5), ("police", 1, 2.0), ("camhs", 1, 1.0)]
MANAGERS_PER_AGENCY = 3
PARTNERSHIP_LEADS = 2
RAG_WEIGHTS = {"red": 0.2, "amber": 0.45, "green": 0.35}
# How long the lead takes to answer a concern, and another agency to acknowledge one: lognormal, by median.
RESPONSE_MEDIAN_S = {"red": 1.5 * 3600, "amber": 8 * 3600, "green": 30 * 3600}
ACK_MEDIAN_S = {"red": 3 * 3600, "amber": 20 * 3600, "green": 48 * 3600}
DAY = 86400.0
# As messaging/services.py: what a concern's summary follows (events that target it, content that replies).
CONCERN_EVENTS = ("acknowledgement", "rating_change", "retraction")


def configure(db: str) -> None:
    apply_env()
    os.environ["DATABASE_URL"] = f"{HOST_URL}/{db}"
    os.environ["REDIS_URL"] = ""  # nothing here sends an event
    # Nothing here signs a session or a token: without a .env, a throwaway key will do.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))


def psql(sql: str, db: str = "postgres") -> str:
    cmd = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


# --- the plan: who, where, how many --------------------------------------------------------------------


@dataclass
class Scale:
    agencies: int
    professionals: int
    workspaces: int
    posts: int
    actions: int
    seed: int = 6


@dataclass
class Person:
    pk: int
    agency: int
    role: str
    key: int = 0  # identity key pk


@dataclass
class Space:
    pk: int
    lead: int  # Person index
    members: list[int]  # Person indexes, the lead first
    created: float  # epoch seconds
    status: str
    posts: int = 0
    last: float = 0.0  # its last post's time
    actions: int = 0
    concerns: int = 0
    rag: str = ""


def agency_kinds(n: int) -> list[tuple[str, float]]:
    """`n` agencies' kinds and staff weights, the last a partnership; the plan's mix, cycled."""
    kinds = [(kind, weight) for kind, count, weight in AGENCY_PLAN for _ in range(count)]
    out = [kinds[i % len(kinds)] for i in range(max(1, n - 1))]
    return [*out, ("other", 0.05)]


# --- bytes --------------------------------------------------------------------------------------------


class Noise:
    """Random bytes of any length, sliced from one random pool (each value incompressible, as ciphertext is)."""

    def __init__(self, rng: random.Random, size: int = 32 * 1024 * 1024):
        self.pool = os.urandom(size)
        self.rng = rng

    def take(self, n: int) -> bytes:
        at = self.rng.randrange(0, len(self.pool) - n)
        return self.pool[at:at + n]


BLOCKS = {"update": (1, 1, 1, 2, 2, 3, 4), "decision": (1, 1, 2, 3), "concern": (1, 2, 2, 3, 4), "action": (1, 1, 2),
          "edit": (1, 1, 2, 3)}


def body_bytes(rng: random.Random, kind: str) -> int:
    """A realistic ciphertext size: the padded body (crypto.POST_PAD_BLOCK steps, the child's details in
    DETAILS_PAD_BLOCK steps) plus the 16-byte tag."""
    if kind == "details":
        return crypto.DETAILS_PAD_BLOCK + 16
    return rng.choice(BLOCKS.get(kind, (1,))) * crypto.POST_PAD_BLOCK + 16


# --- one workspace's thread ---------------------------------------------------------------------------


@dataclass(slots=True)
class Event:
    """A post before it has a sequence number: when, what, by whom, and what it points at."""

    at: float
    kind: str
    author: int  # Person index
    rag: str = ""
    status: str = ""
    owner: int | None = None
    due: dt.date | None = None
    parent: Event | None = None
    target: Event | None = None
    pk: int = 0
    seq: int = 0
    # For actions and concerns: what their summary row says.
    facts: dict | None = None


def lognormal(rng: random.Random, median: float, sigma: float = 1.0) -> float:
    return median * math.exp(rng.gauss(0, sigma))


def site_date(t: float) -> dt.date:
    return timezone.localdate(dt.datetime.fromtimestamp(t, tz=dt.UTC))


def day_end(day: dt.date) -> float:
    """The first moment after `day` (site time), in epoch seconds."""
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min)).timestamp()


class Thread:
    """The events of one workspace: the details, its concerns (answered by the lead, acknowledged by other
    agencies, sometimes re-rated) and its actions (accepted, done on time or late, confirmed, cancelled,
    reopened, or still to do), then filler (updates, decisions, edits, acknowledgements, retractions)."""

    def __init__(self, rng: random.Random, space: Space, people: list[Person], now: float):
        self.rng, self.space, self.people, self.now = rng, space, people, now
        self.events: list[Event] = [Event(space.created + 60, "details", space.lead)]
        self.content: list[Event] = []
        self.start = space.created + 120  # everything else comes after the child's details

    def when(self) -> float:
        return self.rng.uniform(self.start, self.now)

    def add(self, event: Event) -> Event | None:
        if event.at >= self.now:
            return None  # has not happened yet
        self.events.append(event)
        return event

    def other_member(self, *not_these: int) -> int:
        choices = [m for m in self.space.members if m not in not_these]
        return self.rng.choice(choices or self.space.members)

    def concern(self) -> None:
        """A concern, the lead's answer (most of the time), other agencies' acknowledgements, and now and
        then the lead's re-rating. settle() works out its summary once the whole thread is known."""
        rng, lead = self.rng, self.space.lead
        author = self.rng.choice(self.space.members)
        rag = rng.choices(list(RAG_WEIGHTS), weights=list(RAG_WEIGHTS.values()))[0]
        concern = Event(self.when(), "concern", author, rag=rag)
        self.add(concern)
        self.content.append(concern)
        raised = dt.datetime.fromtimestamp(concern.at, tz=dt.UTC)
        concern.facts = {"rag": rag, "due": clocks.concern_due(rag, raised).timestamp(), "acks": {}}
        latest = concern.at
        if author != lead and rng.random() < 0.93:  # the rest are never answered
            answer = self.add(Event(concern.at + lognormal(rng, RESPONSE_MEDIAN_S[rag], 0.8), "acknowledgement", lead,
                                    target=concern))
            if answer is not None:
                self._first_ack(concern, answer)
                latest = answer.at
        # Other agencies acknowledge it, each after its own time.
        agencies = {self.people[m].agency: m for m in self.space.members if m not in (author, lead)}
        for member in agencies.values():
            if rng.random() < 0.7:
                ack = self.add(Event(concern.at + lognormal(rng, ACK_MEDIAN_S[rag], 1.2), "acknowledgement", member,
                                     target=concern))
                if ack is not None:
                    self._first_ack(concern, ack)
                    latest = max(latest, ack.at)
        # Sometimes the lead re-rates it later, once the agencies have acknowledged it (so each agency's
        # first acknowledgement was of the first rating).
        if rng.random() < 0.08:
            new = rng.choice([r for r in RAG_WEIGHTS if r != rag])
            if self.add(Event(latest + lognormal(rng, 3 * DAY), "rating_change", lead, rag=new, target=concern)):
                concern.facts["rag"] = new
        self.space.concerns += 1

    def settle(self) -> None:
        """After the thread is numbered: each concern's summary as services/summaries.py::summarise_concern leaves it.
        The lead's first answer of any kind (an acknowledgement, a rating change, a reply or an action on
        it) stops the clock; every post that answers or acknowledges it moves `last`."""
        answers: dict[int, list[Event]] = {}
        for e in self.events:
            if e.target is not None and e.target.kind == "concern" and e.kind in CONCERN_EVENTS:
                answers.setdefault(id(e.target), []).append(e)
            elif e.parent is not None and e.parent.kind == "concern" and e.kind in CONTENT_KINDS:
                answers.setdefault(id(e.parent), []).append(e)
        lead = self.space.lead
        for c in self.events:
            if c.kind != "concern":
                continue
            mine = answers.get(id(c), [])
            f = c.facts
            f["responded"] = c.at if c.author == lead else min((a.at for a in mine if a.author == lead), default=None)
            f["last"] = max([c, *mine], key=lambda e: e.seq)
            late = f["due"] < (f["responded"] if f["responded"] is not None else self.now)
            # The clock job runs every minute.
            f["breached"] = min(f["due"] + self.rng.uniform(1, 60), self.now) if late else None

    def _first_ack(self, concern: Event, ack: Event) -> None:
        agency = self.people[ack.author].agency
        held = concern.facts["acks"].get(agency)
        if held is None or ack.at < held[0]:
            concern.facts["acks"][agency] = (ack.at, concern.facts["rag"])

    def action(self) -> None:
        rng, lead, space = self.rng, self.space.lead, self.space
        owner = lead if rng.random() < 0.15 else self.other_member(lead)
        created = self.when()
        parent = rng.choice(self.content) if self.content and rng.random() < 0.3 else None
        if parent is not None and parent.at >= created:
            parent = None
        day = site_date(created)
        due = day + dt.timedelta(days=rng.choice((1, 2, 3, 5, 7, 7, 10, 14, 14, 21, 28)))
        action = Event(created, "action", lead if rng.random() < 0.8 else owner, status="open", owner=owner, due=due,
                       parent=parent)
        if self.add(action) is None:
            return
        self.content.append(action)
        facts = action.facts = {"status": "open", "accepted": None, "done": None, "confirmed": None, "last": action,
                                "owner": owner, "ended": None}

        def change(status: str, at: float, author: int) -> bool:
            event = self.add(Event(at, "action_status", author, status=status, target=action))
            if event is None:
                return False
            facts["status"], facts["last"] = status, event
            return True

        fate = rng.random()
        if fate < 0.05:  # cancelled by its owner or the lead, before anything else
            change("cancelled", created + lognormal(rng, 3 * DAY), rng.choice((owner, lead)))
            facts["ended"] = facts["last"].at if facts["status"] == "cancelled" else None
            space.actions += 1
            return
        if fate < 0.93 and change("accepted", created + lognormal(rng, 0.5 * DAY), owner):
            facts["accepted"] = facts["last"].at
        if fate < 0.82:  # done (if that moment has come): three in four by the due date
            start = facts["accepted"] or created
            if rng.random() < 0.75:
                at = rng.uniform(start, max(start + 60, day_end(due) - 60))
            else:
                at = max(start, day_end(due)) + lognormal(rng, 3 * DAY, 0.8)
            if change("done", at, owner if rng.random() < 0.9 else lead):
                facts["done"] = facts["ended"] = at
                if rng.random() < 0.04:  # reopened by the lead: the owner's again, no longer done
                    if change("reopened", at + lognormal(rng, DAY), lead):
                        facts["done"] = facts["ended"] = None
                elif rng.random() < 0.75 and change("confirmed", at + lognormal(rng, DAY), lead):
                    facts["confirmed"] = facts["last"].at
        space.actions += 1

    def filler(self, n: int) -> None:
        rng, members = self.rng, self.space.members
        for _ in range(n):
            roll = rng.random()
            earlier = [e for e in self.content if e.kind in ("update", "decision")] if roll >= 0.85 else []
            if roll < 0.85 or not earlier:
                kind = "update" if roll < 0.74 else "decision"
                event = Event(self.when(), kind, rng.choice(members))
                event.parent = rng.choice(self.content) if self.content and rng.random() < 0.2 else None
                if event.parent is not None and event.parent.at >= event.at:
                    event.parent = None
                self.events.append(event)
                self.content.append(event)
                continue
            target = rng.choice(earlier)
            at = min(target.at + lognormal(rng, DAY), self.now - 1)
            if roll < 0.92:
                self.events.append(Event(at, "edit", target.author, target=target))
            elif roll < 0.99:
                self.events.append(Event(at, "acknowledgement", self.other_member(target.author), target=target))
            else:
                self.events.append(Event(at, "retraction", target.author, target=target))
                self.content.remove(target)  # nothing later points at it


# --- writing ------------------------------------------------------------------------------------------


class Copier:
    """COPY ... FROM STDIN (FORMAT BINARY) into a model's table, naming columns by the model's fields."""

    def __init__(self, conn, model, columns: list[str]):
        from django.db import connection

        fields = {f.attname: f for f in model._meta.concrete_fields}
        missing = [f.attname for f in fields.values() if not f.null and f.attname not in columns
                   and not f.primary_key]
        if missing:
            raise SystemExit(f"{model.__name__}: no value for {', '.join(missing)} (did a migration add a column?)")
        self.table, self.columns = model._meta.db_table, [fields[c].column for c in columns]
        self.types = [fields[c].db_type(connection).split("(")[0] for c in columns]
        self.conn = conn

    def write(self, rows) -> int:
        n = 0
        with self.conn.cursor() as cur, cur.copy(f'COPY "{self.table}" ({", ".join(self.columns)}) FROM STDIN '
                                                 f"(FORMAT BINARY)") as copy:
            copy.set_types(self.types)
            for row in rows:
                copy.write_row(row)
                n += 1
        return n


def ts(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


def generate(scale: Scale, db: str) -> None:
    import psycopg
    from django.contrib.auth.hashers import make_password

    from accounts.models import Agency, IdentityKey, Professional
    from messaging.models import (
        ActionSummary,
        ConcernAcknowledgement,
        ConcernSummary,
        CustodianKey,
        Epoch,
        Membership,
        Post,
        Workspace,
    )
    from tacprotocol import actions as action_rules

    rng = random.Random(scale.seed)
    noise = Noise(rng)
    now = time.time()
    t0 = time.monotonic()
    conn = psycopg.connect(f"{HOST_URL}/{db}")

    def step(what: str) -> None:
        if not conn.autocommit:
            conn.commit()
        print(f"  {what} ({time.monotonic() - t0:.1f} s)", flush=True)

    # Agencies and their staff.
    kinds = agency_kinds(scale.agencies)
    agencies = [(i + 1, f"W6 {kind.replace('_', ' ')} {i + 1:02d}", kind) for i, (kind, _w) in enumerate(kinds)]
    Copier(conn, Agency, ["id", "name", "kind", "created_at"]).write(
        (pk, name, kind, ts(now - 400 * DAY)) for pk, name, kind in agencies)
    weights = [w for _k, w in kinds]
    people: list[Person] = []
    partnership = len(agencies)
    for i in range(len(agencies) - 1):
        people += [Person(0, i + 1, "manager") for _ in range(MANAGERS_PER_AGENCY)]
    people += [Person(0, partnership, "partnership") for _ in range(PARTNERSHIP_LEADS)]
    while len(people) < scale.professionals:
        people.append(Person(0, rng.choices(range(1, partnership), weights=weights[:-1])[0], "practitioner"))
    for pk, person in enumerate(people, start=1):
        person.pk = person.key = pk
    unusable = make_password(None)  # every account the same unusable hash: nobody signs in here
    Copier(conn, Professional, [
        "id", "password", "is_superuser", "public_id", "email", "full_name", "job_title", "agency_id", "role",
        "is_agency_admin", "is_staff", "is_active", "date_joined", "kdf_salt", "kdf_opslimit", "kdf_memlimit",
        "session_generation", "needs_rekey",
    ]).write((p.pk, unusable, False, uuid.UUID(int=rng.getrandbits(128), version=4), f"w6-{p.pk}@bench.example",
              f"W6 {p.role.title()} {p.pk}", p.role.title(), p.agency, p.role, False, False, True, ts(now - 300 * DAY),
              noise.take(16), 1, 8388608, 0, False) for p in people)
    Copier(conn, IdentityKey, ["id", "professional_id", "version", "sign_public", "box_public", "binding_signature",
                               "wrapped_secret", "created_at"]).write(
        (p.pk, p.pk, 1, noise.take(32), noise.take(32), noise.take(64), noise.take(104), ts(now - 300 * DAY))
        for p in people)
    custodian_box, custodian_sign = noise.take(32), noise.take(32)
    Copier(conn, CustodianKey, ["id", "box_public", "sign_public", "key_id", "label", "created_at", "is_current"]).write(
        [(1, custodian_box, custodian_sign, crypto.custodian_key_id(custodian_box, custodian_sign), "W6 custodian",
          ts(now - 400 * DAY), True)])
    step(f"{len(agencies)} agencies, {len(people)} professionals and their keys")

    # Workspaces: a lead (social care more often than not), 3-7 members from any agency, one epoch.
    practitioners = [i for i, p in enumerate(people) if p.role == "practitioner"]
    social_care = [i for i in practitioners if kinds[people[i].agency - 1][0] == "childrens_social_care"]
    spaces: list[Space] = []
    for pk in range(1, scale.workspaces + 1):
        lead = rng.choice(social_care if social_care and rng.random() < 0.7 else practitioners)
        others = set()
        want = rng.randint(3, 7)
        while len(others) < min(want, len(practitioners) - 1):
            pick = rng.choice(practitioners)
            if pick != lead:
                others.add(pick)
        status = rng.choices(("open", "stepped_down", "closed"), weights=(0.85, 0.05, 0.10))[0]
        spaces.append(Space(pk, lead, [lead, *sorted(others)], now - rng.uniform(7 * DAY, 16 * 7 * DAY), status))

    # Posts per workspace (skewed: most small, some long), actions in proportion, summing exactly.
    weights_ws = [rng.lognormvariate(0, 0.6) for _ in spaces]
    total_w = sum(weights_ws)

    def shares(total: int) -> list[int]:
        raw = [total * w / total_w for w in weights_ws]
        out = [int(x) for x in raw]
        for i in sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)[:total - sum(out)]:
            out[i] += 1
        return out

    action_counts, concern_counts = shares(scale.actions), shares(round(scale.posts * 0.06))
    # Skeleton first (details, concerns and their answers, actions and their changes), then filler to each
    # workspace's share of what is left, so the posts add up to exactly `posts`.
    threads = []
    for space, n_actions, n_concerns in zip(spaces, action_counts, concern_counts, strict=True):
        thread = Thread(rng, space, people, now)
        for _ in range(n_concerns):
            thread.concern()
        made = 0
        while made < n_actions:  # an action created "after now" does not happen: draw again
            before = space.actions
            thread.action()
            made += space.actions - before
        threads.append(thread)
    skeleton = sum(len(t.events) for t in threads)
    if skeleton > scale.posts:
        raise SystemExit(f"{skeleton:,} posts are needed for the actions and concerns alone; ask for more posts")
    for thread, n in zip(threads, shares(scale.posts - skeleton), strict=True):
        thread.filler(n)
    print(f"  planned {scale.posts:,} posts ({skeleton:,} for actions and concerns) "
          f"({time.monotonic() - t0:.1f} s)", flush=True)

    # Sequence numbers and primary keys, in each workspace's time order.
    next_pk = 1
    for thread in threads:
        thread.events.sort(key=lambda e: e.at)
        for seq, event in enumerate(thread.events, start=1):
            event.seq, event.pk = seq, next_pk
            next_pk += 1
        space = thread.space
        space.posts, space.last = len(thread.events), thread.events[-1].at
        thread.settle()
        space.rag = max((e.facts["rag"] for e in thread.events if e.kind == "concern"), key=RAG_ORDER.get, default="")

    Copier(conn, Workspace, [
        "id", "public_id", "reference", "lead_id", "status", "created_at", "closed_at", "current_rag",
        "current_epoch", "rotation_required", "last_seq", "roster_version", "roster_keys_checked",
    ]).write((s.pk, uuid.UUID(int=rng.getrandbits(128), version=4), f"W6-{s.pk:06d}", people[s.lead].pk, s.status,
              ts(s.created), ts(min(now, s.last + 3600)) if s.status == "closed" else None, s.rag, 1, False,
              s.posts, len(s.members), len(s.members)) for s in spaces)
    Copier(conn, Membership, [
        "workspace_id", "professional_id", "role", "state", "invited_by_id", "invited_at", "joined_at",
        "first_epoch", "history_shared", "last_read_seq",
    ]).write((s.pk, people[m].pk, "lead" if m == s.lead else "member", "active", people[s.lead].pk, ts(s.created),
              ts(s.created + 600), 1, False, rng.randint(0, s.posts)) for s in spaces for m in s.members)
    Copier(conn, Epoch, ["id", "workspace_id", "number", "manifest", "manifest_signature", "manifest_hash",
                         "signed_by_id", "signer_key_id", "custodian_key_id", "created_at", "start_seq"]).write(
        (s.pk, s.pk, 1, noise.take(200 + 120 * len(s.members)), noise.take(64), noise.take(32), people[s.lead].pk,
         people[s.lead].key, 1, ts(s.created + 600), 0) for s in spaces)
    step(f"{len(spaces):,} workspaces, their memberships and epochs")

    # The posts, a batch of workspaces per transaction (PostgreSQL checks the deferred foreign keys at
    # each commit, so the queue of checks stays short).
    post_copy = Copier(conn, Post, [
        "id", "workspace_id", "seq", "post_id", "author_id", "author_key_id", "epoch_id", "kind", "rag", "status",
        "owner_id", "due_date", "parent_id", "target_id", "client_time", "created_at", "header", "nonce",
        "ciphertext", "signature",
    ])
    header_bytes = crypto.HEADER_BYTES

    def post_rows(batch):
        for thread in batch:
            for e in thread.events:
                author = people[e.author]
                yield (e.pk, thread.space.pk, e.seq, uuid.UUID(int=rng.getrandbits(128), version=4), author.pk,
                       author.key, thread.space.pk, e.kind, e.rag, e.status,
                       people[e.owner].pk if e.owner is not None else None, e.due,
                       e.parent.pk if e.parent else None, e.target.pk if e.target else None,
                       ts(e.at - rng.uniform(0, 2)), ts(e.at), noise.take(header_bytes), noise.take(24),
                       noise.take(body_bytes(rng, e.kind)), noise.take(64))

    written = 0
    batch_size = max(1, 50_000 // max(1, scale.posts // max(1, scale.workspaces)))
    for i in range(0, len(threads), batch_size):
        written += post_copy.write(post_rows(threads[i:i + batch_size]))
        conn.commit()
        if (i // batch_size) % 10 == 9 or i + batch_size >= len(threads):
            print(f"  {written:,} posts ({time.monotonic() - t0:.1f} s)", flush=True)

    # The summaries, as services.post_create would have left them.
    action_rows, concern_rows, ack_rows = [], [], []
    for thread in threads:
        for e in thread.events:
            if e.kind == "action":
                f = e.facts
                owner = people[f["owner"]]
                remind, breach, escalate = clocks.action_clock(e.due)
                # The clock job acted on each moment that came while the action was still to do.
                end = f["ended"] if f["ended"] is not None else now
                if f["status"] in action_rules.PENDING:
                    end = now

                def acted(moment, end=end):
                    return moment + dt.timedelta(seconds=rng.uniform(1, 60)) if moment.timestamp() < end else None

                last = f["last"]
                action_rows.append((
                    e.pk, thread.space.pk, owner.pk, owner.agency, f["status"], e.due, ts(e.at),
                    ts(f["accepted"]) if f["accepted"] else None, ts(f["done"]) if f["done"] else None,
                    ts(f["confirmed"]) if f["confirmed"] else None, False, ts(last.at), last.seq,
                    remind, breach, escalate, acted(remind), acted(breach), acted(escalate)))
            elif e.kind == "concern":
                f = e.facts
                last = f["last"]
                concern_rows.append((
                    e.pk, thread.space.pk, people[e.author].agency, f["rag"], ts(e.at), ts(e.at), ts(f["due"]),
                    ts(f["responded"]) if f["responded"] is not None else None,
                    ts(f["breached"]) if f["breached"] is not None else None, 1 if f["breached"] is not None else 0,
                    False, ts(last.at), last.seq))
                ack_rows += [(e.pk, agency, rag, ts(at), int(at - e.at)) for agency, (at, rag) in f["acks"].items()]
    Copier(conn, ActionSummary, [
        "action_id", "workspace_id", "owner_id", "owner_agency_id", "status", "due_date", "created_at", "accepted_at",
        "done_at", "confirmed_at", "retracted", "updated_at", "last_change_seq", "remind_at", "breach_at",
        "escalate_at", "reminded_at", "breach_sent_at", "escalated_at",
    ]).write(action_rows)
    Copier(conn, ConcernSummary, [
        "concern_id", "workspace_id", "author_agency_id", "rag", "raised_at", "clock_started_at", "due_at",
        "responded_at", "breached_at", "breach_count", "retracted", "updated_at", "last_change_seq",
    ]).write(concern_rows)
    Copier(conn, ConcernAcknowledgement, ["concern_id", "agency_id", "rag", "acknowledged_at", "seconds"]).write(ack_rows)
    step(f"{len(action_rows):,} action summaries, {len(concern_rows):,} concern summaries, "
         f"{len(ack_rows):,} first acknowledgements")

    # Identity columns carry on after the ids written here; then statistics, as autovacuum would have them.
    with conn.cursor() as cur:
        for model in (Agency, Professional, IdentityKey, CustodianKey, Workspace, Membership, Epoch, Post,
                      ConcernAcknowledgement):
            table = model._meta.db_table
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM \"{table}\"))")
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM (ANALYZE)")
    step("identity sequences moved on; VACUUM (ANALYZE)")
    conn.close()


def counts(db: str) -> dict[str, int] | None:
    """The database's counts, or None if it does not exist or was never filled."""
    if not psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'"):
        return None
    try:
        row = psql("SELECT (SELECT count(*) FROM accounts_agency), (SELECT count(*) FROM accounts_professional), "
                   "(SELECT count(*) FROM messaging_workspace), (SELECT count(*) FROM messaging_post), "
                   "(SELECT count(*) FROM messaging_actionsummary)", db)
    except subprocess.CalledProcessError:
        return None
    return dict(zip(("agencies", "professionals", "workspaces", "posts", "actions"), map(int, row.split("|")),
                    strict=True))


# What services.post_create would have left, checked against the posts in SQL: each query counts the rows
# that break one rule (so 0 everywhere is a pass).
CHECKS = {
    "posts numbered 1..last_seq in each workspace": """
        SELECT count(*) FROM messaging_workspace w LEFT JOIN (
            SELECT workspace_id, count(*) n, max(seq) top FROM messaging_post GROUP BY workspace_id) p
            ON p.workspace_id = w.id
        WHERE coalesce(p.n, 0) <> w.last_seq OR coalesce(p.top, 0) <> w.last_seq""",
    "posts by someone not a member": """
        SELECT count(*) FROM messaging_post p WHERE NOT EXISTS (SELECT 1 FROM messaging_membership m
            WHERE m.workspace_id = p.workspace_id AND m.professional_id = p.author_id)""",
    "actions without their summary, or summaries of no action": """
        SELECT (SELECT count(*) FROM messaging_post p LEFT JOIN messaging_actionsummary s ON s.action_id = p.id
                WHERE p.kind = 'action' AND s.action_id IS NULL)
             + (SELECT count(*) FROM messaging_actionsummary s JOIN messaging_post p ON p.id = s.action_id
                WHERE p.kind <> 'action' OR p.owner_id <> s.owner_id OR p.due_date <> s.due_date
                   OR p.created_at <> s.created_at)""",
    "action summaries whose status or times are not their posts'": """
        SELECT count(*) FROM messaging_actionsummary s
        LEFT JOIN LATERAL (SELECT c.status, c.seq, c.created_at FROM messaging_post c
                           WHERE c.target_id = s.action_id AND c.kind = 'action_status'
                           ORDER BY c.seq DESC LIMIT 1) last ON true
        JOIN accounts_professional o ON o.id = s.owner_id
        WHERE s.status <> coalesce(last.status, 'open') OR s.last_change_seq <> coalesce(last.seq, s.last_change_seq)
           OR s.owner_agency_id <> o.agency_id
           OR (s.status IN ('done', 'confirmed')) <> (s.done_at IS NOT NULL)
           OR s.done_at IS DISTINCT FROM (SELECT max(c.created_at) FILTER (WHERE c.status = 'done')
                                          FROM messaging_post c WHERE c.target_id = s.action_id
                                          AND s.status IN ('done', 'confirmed'))""",
    "concerns without their summary": """
        SELECT count(*) FROM messaging_post p LEFT JOIN messaging_concernsummary s ON s.concern_id = p.id
        WHERE p.kind = 'concern' AND (s.concern_id IS NULL OR s.raised_at <> p.created_at)""",
    "concern summaries whose answer, breach or last change is not their posts'": """
        SELECT count(*) FROM messaging_concernsummary s JOIN messaging_post c ON c.id = s.concern_id
        JOIN messaging_workspace w ON w.id = s.workspace_id
        WHERE s.responded_at IS DISTINCT FROM (
            CASE WHEN c.author_id = w.lead_id THEN c.created_at ELSE (
                SELECT min(a.created_at) FROM messaging_post a
                WHERE (a.target_id = c.id OR a.parent_id = c.id) AND a.author_id = w.lead_id) END)
           OR (s.breached_at IS NOT NULL) <> (s.due_at < coalesce(s.responded_at, now()))
           OR s.last_change_seq <> greatest(c.seq, (
                SELECT max(a.seq) FROM messaging_post a
                WHERE (a.target_id = c.id AND a.kind IN ('acknowledgement', 'rating_change', 'retraction'))
                   OR (a.parent_id = c.id AND a.kind IN ('concern', 'action', 'update', 'decision', 'details',
                                                          'history_shared'))))""",
    "first acknowledgements by an agency that are not its first acknowledgement post": """
        SELECT count(*) FROM (
            SELECT a.target_id, pr.agency_id, min(a.created_at) first FROM messaging_post a
            JOIN accounts_professional pr ON pr.id = a.author_id JOIN messaging_post c ON c.id = a.target_id
            WHERE a.kind = 'acknowledgement' AND c.kind = 'concern' GROUP BY a.target_id, pr.agency_id) posts
        FULL JOIN messaging_concernacknowledgement k ON k.concern_id = posts.target_id AND k.agency_id = posts.agency_id
        WHERE posts.first IS DISTINCT FROM k.acknowledged_at""",
}


def check(db: str) -> dict[str, int]:
    return {rule: int(psql(sql, db)) for rule, sql in CHECKS.items()}


def finished_scale(db: str) -> dict | None:
    """The scale a finished generation recorded on the database (its comment), if any."""
    comment = psql(f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{db}'")
    try:
        return json.loads(comment).get("w6")
    except ValueError:
        return None


def cmd_generate(args) -> None:
    scale = Scale(args.agencies, args.professionals, args.workspaces, args.posts, args.actions, args.seed)
    want = {"agencies": scale.agencies, "professionals": scale.professionals, "workspaces": scale.workspaces,
            "posts": scale.posts, "actions": scale.actions}
    # Reused only if a generation of this scale finished there (it records itself last) and the rows are
    # all still there.
    if finished_scale(args.db) == vars(scale) and counts(args.db) == want:
        print(f"{args.db} already holds {json.dumps(want)}: reused (drop it to make it again)")
        return
    t0 = time.monotonic()
    psql(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{args.db}"')
    configure(args.db)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    print(f"{args.db} created and migrated ({time.monotonic() - t0:.1f} s)", flush=True)
    generate(scale, args.db)
    broken = {rule: n for rule, n in check(args.db).items() if n}
    if broken:
        raise SystemExit(f"{args.db} does not hold what the services would have made: {json.dumps(broken)}")
    print(f"  checked against the posts: {len(CHECKS)} rules, no row breaks one ({time.monotonic() - t0:.1f} s)")
    psql(f"COMMENT ON DATABASE \"{args.db}\" IS '{json.dumps({'w6': vars(scale)})}'")
    took = time.monotonic() - t0
    size = psql(f"SELECT pg_size_pretty(pg_database_size('{args.db}'))")
    print(f"{args.db}: {json.dumps(counts(args.db))}, {size}, generated in {took:.0f} s")


# --- measuring ----------------------------------------------------------------------------------------


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def summary(samples: list[float]) -> dict:
    return {"runs": len(samples), "p50_ms": ms(pct(samples, 50)), "p95_ms": ms(pct(samples, 95)),
            "p99_ms": ms(pct(samples, 99)), "max_ms": ms(max(samples))}


def seq_scans(plan: dict) -> set[str]:
    found = set()
    if plan.get("Node Type") == "Seq Scan":
        found.add(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found |= seq_scans(child)
    return found


def cmd_measure(args) -> None:
    configure(args.db)
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Count
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Agency, Professional
    from messaging.models import ActionSummary, ConcernSummary, Post, Workspace
    from oversight import selectors
    from oversight.forms import FilterForm

    size = {"workspaces": Workspace.objects.count(), "posts": Post.objects.count(),
            "actions": ActionSummary.objects.count(), "concerns": ConcernSummary.objects.count()}
    if not size["posts"]:
        raise SystemExit(f"{args.db} is empty: run `python -m bench.w6 generate` first")
    today = timezone.localdate()
    # Viewers: a manager of the largest (most staff) social care agency, GP practice, school and police
    # force, and a partnership lead (who oversees everything).
    managers = []
    for kind in ("childrens_social_care", "gp_practice", "school", "police"):
        agency = (Agency.objects.filter(kind=kind).annotate(n=Count("professionals"))
                  .order_by("-n", "pk").first())
        if agency is not None:
            managers.append(Professional.objects.filter(agency=agency, role="manager").order_by("pk").first())
    partnership = Professional.objects.filter(role="partnership").order_by("pk").first()
    viewers = [("manager", m) for m in managers[:args.managers]] + [("partnership", partnership)]
    other_agency = Agency.objects.filter(kind="gp_practice").order_by("pk").first()
    filter_sets = {
        "none": {},
        "last 4 weeks": {"date_from": (today - dt.timedelta(days=27)).isoformat(), "date_to": today.isoformat()},
        "one agency, overdue": {"agency": str(other_agency.pk), "action_status": "overdue"},
        "open workspaces, completed": {"workspace_status": "open", "action_status": "completed"},
    }

    def page(viewer, query):
        """What oversight/views.py::dashboard asks the database for: the form's checks and choices (the
        page lists agencies and leads), the figures and the trends."""
        form = FilterForm(query, viewer=viewer)
        filters = form.filters()
        list(form.fields["agency"].choices)
        list(form.fields["lead"].choices)
        selectors.dashboard(viewer=viewer, filters=filters)
        selectors.trends(viewer=viewer, filters=filters)

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]

    def select_one():
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def count_actions():
        with connection.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {ActionSummary._meta.db_table}")
            cur.fetchone()

    base = {"workload": "W6", "db": args.db, **size, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "cmd": " ".join(sys.argv)}
    rows = []

    def floors(phase: str) -> None:
        timed(select_one, 20)
        timed(count_actions, 2)
        for what, fn, n in (("SELECT 1", select_one, args.floor_runs),
                            (f"SELECT count(*) FROM {ActionSummary._meta.db_table}", count_actions,
                             max(5, args.floor_runs // 10))):
            rows.append({**base, "workload": "W6 floor", "what": what, "phase": phase, **summary(timed(fn, n))})
            print(json.dumps(rows[-1]), flush=True)

    floors("before")
    for label, query in filter_sets.items():
        for kind in ("manager", "partnership"):
            samples, queries, scans, post_sql, cpu, pg, each = [], 0, set(), 0, 0.0, 0.0, {}
            for _kind, viewer in [v for v in viewers if v[0] == kind]:
                timed(lambda viewer=viewer: page(viewer, query), args.warmup)
                # Once more to see its statements: how many, whether any names the posts table, and what
                # PostgreSQL plans to read by sequential scan.
                with CaptureQueriesContext(connection) as captured:
                    page(viewer, query)
                queries = max(queries, len(captured))
                for q in captured.captured_queries:
                    post_sql += f'"{Post._meta.db_table}"' in q["sql"]
                    with connection.cursor() as cur:
                        cur.execute("EXPLAIN (FORMAT JSON) " + q["sql"])
                        scans |= seq_scans(cur.fetchone()[0][0]["Plan"])
                cpu0, pg0 = cpu_self(), cpu_of(backend)
                mine = timed(lambda viewer=viewer: page(viewer, query), args.runs)
                cpu, pg = cpu + cpu_self() - cpu0, pg + cpu_of(backend) - pg0
                samples += mine
                each[viewer.agency.name] = ms(pct(mine, 95))
            rows.append({**base, "viewer": kind, "viewers": len(each),
                         "agencies": list(each) if kind == "manager" else [], "p95_ms_each": each,
                         "filters": label, **summary(samples), "queries_per_page": queries,
                         "statements_reading_posts": post_sql, "seq_scans": sorted(scans),
                         "client_cpu_s": round(cpu, 2), "postgres_cpu_s": round(pg, 2)})
            print(json.dumps(rows[-1]), flush=True)
    floors("after")

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    from .report import markdown_row

    print()
    for r in rows:
        print(markdown_row(r))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="make (or reuse) the W6 database")
    gen.add_argument("--workspaces", type=int, default=10_000)
    gen.add_argument("--posts", type=int, default=1_000_000)
    gen.add_argument("--actions", type=int, default=100_000)
    gen.add_argument("--professionals", type=int, default=2_000)
    gen.add_argument("--agencies", type=int, default=20)
    gen.add_argument("--seed", type=int, default=6)
    meas = sub.add_parser("measure", help="time the dashboard page's queries on the W6 database")
    meas.add_argument("--runs", type=int, default=100, help="timed runs per viewer and filter set")
    meas.add_argument("--warmup", type=int, default=5)
    meas.add_argument("--managers", type=int, default=4, help="managers sampled (social care, GP, school, police)")
    meas.add_argument("--floor-runs", type=int, default=200)
    meas.add_argument("--out", default=RESULTS)
    for p in (gen, meas):
        p.add_argument("--db", default=DB_DEFAULT)
    args = ap.parse_args()
    (cmd_generate if args.command == "generate" else cmd_measure)(args)


if __name__ == "__main__":
    main()
