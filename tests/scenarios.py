"""Hostile-server scenarios shared by the Python client's tests (tests/tacclient/test_trust_scenarios.py)
and the browser's (tests/browser/test_trust_scenarios.py): an honest team is built through the real
services, then the server's answers (the workspace detail, the post list) are rewritten as an operator who
edits rows and answers would. Both implementations of "what a reader believes" (tacprotocol.workspace and
.record; frontend/static/tac/workspace.js and record.js) run over the same inputs and must reach the same
outcome (`outcome` here, `OUTCOME_JS` there), and each scenario states what that outcome must be."""

from __future__ import annotations

import base64
import copy
import json
import uuid

from messaging import custodian as custodian_pin
from messaging import selectors
from messaging.models import Membership, Workspace
from tacprotocol import crypto
from tacprotocol.record import Record
from tacprotocol.workspace import (
    CURRENT_STATES,
    CustodianPin,
    TrustError,
    epoch_bundle,
    member_cards,
    now_ms,
    plan_epoch_members,
    verify_workspace,
)
from tests.messaging.factories import Client, join, member_key, password_reset

b64 = lambda data: base64.b64encode(bytes(data)).decode()  # noqa: E731


def payload_of(workspace: Workspace, envelope: dict, *, seq: int, author: uuid.UUID, epoch: int, kind: str,
               created_at: str = "2026-12-02T12:00:00+00:00") -> dict:
    """A post payload as the API would serve it, for a post the server never checked."""
    return {"seq": seq, "post_id": envelope["post_id"], "workspace": str(workspace.public_id), "author": str(author),
            "author_key_version": 1, "epoch": epoch, "kind": kind, "created_at": created_at,
            **{k: envelope[k] for k in ("header", "nonce", "ciphertext", "signature")}}


def server_identity(public_id: uuid.UUID) -> tuple[crypto.Identity, dict]:
    """A key pair the server made for someone, with a binding it can sign itself (bindings are self-signed)."""
    identity = crypto.Identity.generate()
    return identity, {"sign_public": b64(identity.sign_public), "box_public": b64(identity.box_public),
                      "binding_signature": b64(identity.binding_signature(public_id))}


class Team:
    """Sam (lead), Priya (GP) and Morgan (member) in one workspace at epoch 2, with a thread: a red concern,
    an action owned by Priya that she marks done and Sam reopens, Morgan's acknowledgement, Sam's update."""

    def __init__(self, lead, gp, manager, outsider, custodian):
        self.personas = {"lead": lead, "gp": gp, "manager": manager, "outsider": outsider}
        self.custodian = custodian
        self.clients = {name: Client(p, custodian) for name, p in self.personas.items()}
        sam, priya, morgan = self.clients["lead"], self.clients["gp"], self.clients["manager"]
        self.workspace = sam.create_workspace({"name": "Robin Example"})
        join(sam, self.workspace, priya, morgan)
        self.concern = priya.post(self.workspace, "concern", {"category": "neglect", "detail": "Missed visits"},
                                  rag="red").post
        self.action = sam.post(self.workspace, "action", {"title": "Home visit", "detail": ""},
                               owner=priya.user.public_id, status="open").post
        self.done = priya.post(self.workspace, "action_status", {"note": "Visited"}, target=self.action.post_id,
                               status="done").post
        self.reopened = sam.post(self.workspace, "action_status", {"note": "Not seen"}, target=self.action.post_id,
                                 status="reopened").post
        self.ack = morgan.post(self.workspace, "acknowledgement", {}, target=self.concern.post_id).post
        self.update = sam.post(self.workspace, "update", {"text": "Spoke to school"}).post

    def reader(self, name: str) -> dict:
        client = self.clients[name]
        client.refresh_identity()
        return {"id": str(client.user.public_id), "sign_seed": b64(client.identity.sign_seed),
                "box_secret": b64(client.identity.box_secret)}

    def answers(self, name: str) -> tuple[dict, list[dict]]:
        client = self.clients[name]
        self.workspace.refresh_from_db()
        detail = json.loads(json.dumps(client.detail(self.workspace)))
        posts = json.loads(json.dumps(selectors.post_list(professional=client.user, workspace=self.workspace,
                                                          limit=1000)))
        return detail, posts

    def scenario(self, name: str, *, reader: str = "gp", detail=None, posts=None, memory=None, verified=None,
                 plan=None, expect: dict) -> dict:
        honest_detail, honest_posts = self.answers(reader)
        self.workspace.refresh_from_db()
        return {"name": name, "reader": self.reader(reader), "reference": self.workspace.reference,
                "detail": honest_detail if detail is None else detail, "posts": honest_posts if posts is None else posts,
                "memory": memory or {}, "verified": verified or {}, "pin": custodian_pin.pin_read(), "plan": plan,
                "expect": expect}


def build(lead, gp, manager, outsider, custodian) -> list[dict]:
    """Every scenario. Each mutation is what a hostile server could answer."""
    team = Team(lead, gp, manager, outsider, custodian)
    ws, sam, priya, morgan = team.workspace, team.clients["lead"], team.clients["gp"], team.clients["manager"]
    out = [team.scenario("honest", expect={"error": None, "problems": 0, "warnings": 0, "status": "reopened",
                                           "acks": 1, "refused": 0})]
    detail, posts = team.answers("gp")

    # Item 4: an epoch signed with a key the server made, chained from the real previous manifest.
    forged = copy.deepcopy(detail)
    fake, _ = server_identity(sam.user.public_id)
    keys = sam.keys(ws)
    members = [member_key(p.user, "lead" if p is sam else "member") for p in (sam, priya, morgan)]
    bundle, _key = epoch_bundle(lead=fake, workspace_id=ws.public_id, epoch=3, prev_manifest_hash=keys.manifest_hashes[2],
                                members=members, custodian=sam.custodian_key)
    forged["epochs"].append({"number": 3, "manifest": bundle["manifest"], "manifest_signature": bundle["manifest_signature"],
                             "signed_by": str(sam.user.public_id), "signer_key_version": 2,
                             "signer_sign_public": b64(fake.sign_public), "created_at": "2026-12-02T12:00:00+00:00",
                             "my_wraps": [{"sealed": w["sealed"], "key_version": 1, "reason": "manifest",
                                           "by": str(sam.user.public_id)} for w in bundle["wraps"]
                                          if w["member"] == str(priya.user.public_id)]})
    forged["author_keys"].append({"professional": str(sam.user.public_id), "version": 2,
                                  "sign_public": b64(fake.sign_public), "box_public": b64(fake.box_public),
                                  "binding_signature": b64(fake.binding_signature(sam.user.public_id)),
                                  "created_at": "2026-12-02T12:00:00+00:00", "replaced_at": None})
    out.append(team.scenario("forged epoch signed by a server key", detail=forged,
                             expect={"error": "not signed by the lead"}))

    # Item 6: the lead's real key signs an epoch sealed to a custodian key that is not pinned.
    rogue = crypto.custodian_identity(bytes(32))
    rogue_key = (crypto.custodian_key_id(rogue.box_public, rogue.sign_public), rogue.box_public, rogue.sign_public)
    bundle, _key = epoch_bundle(lead=sam.identity, workspace_id=ws.public_id, epoch=3,
                                prev_manifest_hash=keys.manifest_hashes[2], members=members, custodian=rogue_key)
    unpinned = copy.deepcopy(detail)
    unpinned["epochs"].append({**forged["epochs"][-1], "manifest": bundle["manifest"],
                               "manifest_signature": bundle["manifest_signature"], "my_wraps": []})
    out.append(team.scenario("epoch sealed to a custodian key that is not pinned", detail=unpinned,
                             expect={"error": "custodian key that is not the pinned one"}))

    # Item 5: the server swaps Priya's sealed key for one of its own.
    swapped = copy.deepcopy(detail)
    server_key = crypto.epoch_key_new()
    for e in swapped["epochs"]:
        if e["number"] == 2:
            e["my_wraps"] = [{**w, "sealed": b64(crypto.epoch_key_wrap(ws.public_id, 2, server_key,
                                                                       priya.identity.box_public))} for w in e["my_wraps"]]
    out.append(team.scenario("sealed key swapped for the server's", detail=swapped,
                             expect={"error": None, "key_problems": 1, "no_key_for": 2}))

    # Item 8: the server hides the newest epoch from a member who has seen it.
    hidden = copy.deepcopy(detail)
    hidden["epochs"] = [e for e in hidden["epochs"] if e["number"] < 2]
    memory = {"first": b64(keys.manifest_hashes[1]), "epoch": 2, "manifest": b64(keys.manifest_hashes[2]),
              "seq": posts[-1]["seq"], "post": b64(hash_of(posts[-1]))}
    out.append(team.scenario("newest epoch hidden from a member who saw it", detail=hidden, posts=[],
                             memory=memory, expect={"error": None, "key_problems": 1, "problems_min": 1}))
    out.append(team.scenario("newest posts withheld from a member who saw them", posts=posts[:-2], memory=memory,
                             expect={"error": None, "problems": 1}))

    # Item 9: a reopen and the done it follows swap numbers: the reopen still wins (signed causal order).
    reordered = copy.deepcopy(posts)
    i = next(k for k, p in enumerate(reordered) if p["post_id"] == str(team.done.post_id))
    j = next(k for k, p in enumerate(reordered) if p["post_id"] == str(team.reopened.post_id))
    reordered[i]["seq"], reordered[j]["seq"] = reordered[j]["seq"], reordered[i]["seq"]
    reordered[i], reordered[j] = reordered[j], reordered[i]
    out.append(team.scenario("a status and the one it follows swap numbers", posts=reordered,
                             expect={"status": "reopened", "notes_min": 1}))

    # Item 9: the reopen and the acknowledgement are deleted; the posts after them say so.
    deleted = [p for p in posts if p["post_id"] not in (str(team.reopened.post_id), str(team.ack.post_id))]
    out.append(team.scenario("a reopen and an acknowledgement deleted", posts=deleted,
                             expect={"status": "done", "warnings_min": 1, "acks": 0}))

    # Item 9: an old acknowledgement served again under a new number.
    replayed = copy.deepcopy(posts) + [{**next(p for p in posts if p["post_id"] == str(team.done.post_id)),
                                         "seq": posts[-1]["seq"] + 1}]
    out.append(team.scenario("an old status re-served under a new number", posts=replayed,
                             expect={"status": "reopened", "warnings_min": 1, "refused": 1}))

    # Item 10: an edit and a retraction of Sam's update signed by Priya; a status by Morgan.
    wrong = copy.deepcopy(posts)
    for client, kind, body, fields in [
        (priya, "edit", {"text": "Rewritten by someone else"}, {"target": team.update.post_id}),
        (priya, "retraction", {"reason": "not mine to retract"}, {"target": team.update.post_id}),
        (morgan, "action_status", {"note": "closing it"}, {"target": team.action.post_id, "status": "cancelled"}),
    ]:
        envelope = client.seal(ws, kind, body, prev=(wrong[-1]["seq"], hash_of(wrong[-1])), **fields)
        wrong.append(payload_of(ws, envelope, seq=wrong[-1]["seq"] + 1, author=client.user.public_id, epoch=2,
                                kind=kind))
    out.append(team.scenario("edit, retraction and status by the wrong people", posts=wrong,
                             expect={"status": "reopened", "update_body": {"text": "Spoke to school"},
                                     "update_retracted": False, "notes_min": 3}))

    # Issue 10, item 3: Priya lowers her red concern to amber; then Morgan, who neither raised it nor
    # leads, makes it green, and the server stores that too. Readers apply Priya's and ignore Morgan's.
    rated = copy.deepcopy(posts)
    for client, rag, reason in [(priya, "amber", "Seen at home: the visits are back on"),
                                (morgan, "green", "Closing this down")]:
        envelope = client.seal(ws, "rating_change", {"reason": reason}, prev=(rated[-1]["seq"], hash_of(rated[-1])),
                               target=team.concern.post_id, rag=rag)
        rated.append(payload_of(ws, envelope, seq=rated[-1]["seq"] + 1, author=client.user.public_id, epoch=2,
                                kind="rating_change"))
    out.append(team.scenario("a rating change by neither the concern's author nor the lead", posts=rated,
                             expect={"rating": [str(team.concern.post_id), [["red", "amber"]]],
                                     "ignored": [rated[-1]["post_id"]], "warnings": 0}))
    last = posts[-1]["seq"]

    # Item 11: a post "as Priya" signed with a key the server made.
    fake_priya, fake_card = server_identity(priya.user.public_id)
    h = crypto.PostHeader(workspace_id=ws.public_id, epoch=2, post_id=uuid.uuid4(), author_id=priya.user.public_id,
                          author_fingerprint=fake_priya.fingerprint(), client_time_ms=crypto_now(), kind="concern",
                          rag="red", prev_seq=0)
    header, nonce, ciphertext, signature = crypto.post_seal(fake_priya, h, b'{"category":"sexual_abuse","detail":"x"}',
                                                            priya.keys(ws).epoch_keys[2])
    forged_post = {"seq": last + 1, "post_id": str(h.post_id), "workspace": str(ws.public_id),
                   "author": str(priya.user.public_id), "author_key_version": 2, "epoch": 2, "kind": "concern",
                   "created_at": "2026-12-02T12:00:00+00:00", "header": b64(header), "nonce": b64(nonce),
                   "ciphertext": b64(ciphertext), "signature": b64(signature)}
    forged_detail, manager_posts = team.answers("manager")
    forged_detail["author_keys"].append({"professional": str(priya.user.public_id), "version": 2, **fake_card,
                                         "created_at": "2026-12-02T12:00:00+00:00", "replaced_at": None})
    out.append(team.scenario("a post as Priya signed with a server key", reader="manager", detail=forged_detail,
                             posts=manager_posts + [forged_post], expect={"refused": 1}))

    # Item 12: the server's time is far from the signed one.
    skewed = copy.deepcopy(posts)
    skewed[2]["created_at"] = "2026-01-05T09:00:00+00:00"
    out.append(team.scenario("the server's time is off", posts=skewed, expect={"notes_min": 1, "refused": 0}))

    # Item 13: the child's details of another reference.
    other = copy.deepcopy(posts)
    envelope = sam.seal(ws, "details", {"name": "Ava", "workspace": str(ws.public_id), "reference": "TAC-2026-9999"},
                        prev=None)
    other.append(payload_of(ws, envelope, seq=last + 1, author=sam.user.public_id, epoch=2, kind="details"))
    out.append(team.scenario("details naming another reference", posts=other, expect={"refused": 1}))

    # Items 2, 3, 7 (the lead's plan): a ghost invitation, a ghost member, a swapped member key.
    lead_detail, _ = team.answers("lead")
    ghost = copy.deepcopy(lead_detail)
    fake_lead, _ = server_identity(sam.user.public_id)
    outsider_card = selectors.professional_card(outsider.user)
    nonce = bytes(16)
    statement = crypto.invite_statement(ws.public_id, outsider.user.public_id,
                                        bytes(base64.b64decode(outsider_card["fingerprint"])), "member", 2, nonce)
    ghost["members"].append({**outsider_card, "role": "member", "state": "accepted",
                             "invited_by": str(sam.user.public_id), "invite_signature": b64(fake_lead.sign(statement)),
                             "invite_epoch": 2, "invite_nonce": b64(nonce), "first_epoch": None, "history_shared": False})
    out.append(team.scenario("an invitation forged with a server key", reader="lead", detail=ghost, plan={},
                             expect={"plan_refused": [str(outsider.user.public_id)], "plan_admitted": []}))
    active_ghost = copy.deepcopy(ghost)
    active_ghost["members"][-1]["state"] = "active"
    out.append(team.scenario("a member the manifest does not list", reader="lead", detail=active_ghost, plan={},
                             expect={"plan_error": "not in the signed membership"}))
    swapped_key = copy.deepcopy(lead_detail)
    fake_gp, fake_card = server_identity(priya.user.public_id)
    for card in swapped_key["members"]:
        if card["id"] == str(priya.user.public_id):
            card.update(fake_card)
    out.append(team.scenario("a member's keys swapped", reader="lead", detail=swapped_key, plan={},
                             expect={"plan_keeps": str(priya.user.public_id), "plan_warnings_min": 1}))

    # The lead's choices, which both clients must plan alike: an accepted invitee the lead did not choose
    # to admit stays out; a removed member is left out; a new lead named from the signed membership swaps
    # roles, and one from outside it (the server's word alone) is refused.
    with_ghost = {"detail": ghost, "reader": "lead"}
    out.append(team.scenario("an accepted invitee the lead did not admit", **with_ghost, plan={"admit": []},
                             expect={"plan_refused": [], "plan_admitted": [],
                                     "plan_leaves_out": str(outsider.user.public_id)}))
    out.append(team.scenario("a member removed by the lead", reader="lead", plan={"remove": str(morgan.user.public_id)},
                             expect={"plan_leaves_out": str(morgan.user.public_id),
                                     "plan_keeps": str(priya.user.public_id)}))
    out.append(team.scenario("the lead handed to a member", reader="lead", plan={"new_lead": str(priya.user.public_id)},
                             expect={"plan_role_of": [str(priya.user.public_id), "lead"]}))
    out.append(team.scenario("the lead handed to someone outside the membership", **with_ghost,
                             plan={"new_lead": str(outsider.user.public_id), "admit": []},
                             expect={"plan_error": "the new lead must be a member"}))

    # The same person listed twice, an old "removed" row after the current one: the current one counts,
    # so the server cannot drop a member from the lead's next epoch by the order of its list.
    stale = copy.deepcopy(lead_detail)
    priya_card = next(c for c in stale["members"] if c["id"] == str(priya.user.public_id))
    stale["members"].append({**priya_card, "state": "removed"})
    out.append(team.scenario("a stale ended card listed after the current one", reader="lead", detail=stale, plan={},
                             expect={"plan_keeps": str(priya.user.public_id)}))

    # Lead continuity (docs/crypto.md): Sam names Priya his deputy (epoch 3). Then epoch 4 as a server
    # could show it to Morgan: signed by the deputy keeping the lead, seizing it while Sam is still a
    # member, taking it once he has gone, naming another deputy; signed by Morgan under an appointment
    # the server signed itself, and under one the custodians signed.
    sam.rotate(ws, deputies=[priya.user])
    out.append(team.scenario("the lead names a deputy", reader="lead", plan={"deputies": [str(morgan.user.public_id)]},
                             expect={"plan_role_of": [str(morgan.user.public_id), "deputy"]}))
    out.append(team.scenario("a deputy names deputies", plan={"deputies": []},
                             expect={"plan_error": "only the lead can name deputies"}))
    morgan_detail, _ = team.answers("manager")
    epoch3 = morgan.keys(ws).manifest_hashes[3]

    def epoch4(signer, roles: dict, appointments: list | None = None) -> dict:
        members = [member_key(c.user, role) for c, role in roles.items()]
        bundle, _key = epoch_bundle(lead=signer.identity, workspace_id=ws.public_id, epoch=4,
                                    prev_manifest_hash=epoch3, members=members, custodian=signer.custodian_key)
        d = copy.deepcopy(morgan_detail)
        d["epochs"].append({"number": 4, "manifest": bundle["manifest"], "manifest_signature": bundle["manifest_signature"],
                            "signed_by": str(signer.user.public_id), "signer_key_version": 1,
                            "signer_sign_public": b64(signer.identity.sign_public),
                            "created_at": "2026-12-02T12:00:00+00:00", "my_wraps": []})
        if appointments is not None:
            d["lead_appointments"] = appointments
        return d

    out.append(team.scenario("a deputy renews the keys and keeps the lead", reader="manager",
                             detail=epoch4(priya, {sam: "lead", priya: "deputy", morgan: "member"}),
                             expect={"error": None}))
    out.append(team.scenario("a deputy seizes the lead while the lead is a member", reader="manager",
                             detail=epoch4(priya, {sam: "member", priya: "lead", morgan: "member"}),
                             expect={"error": "a deputy takes over only when the lead has left"}))
    out.append(team.scenario("a deputy takes the lead once the lead has gone", reader="manager",
                             detail=epoch4(priya, {priya: "lead", morgan: "member"}), expect={"error": None}))
    out.append(team.scenario("a deputy names another deputy", reader="manager",
                             detail=epoch4(priya, {sam: "lead", priya: "deputy", morgan: "deputy"}),
                             expect={"error": "only the lead can"}))
    statement = crypto.lead_appointment_statement(ws.public_id, 3, epoch3, morgan.user.public_id,
                                                  morgan.identity.fingerprint(), 1_790_000_000_000)
    appointment = {"epoch": 3, "appointee": str(morgan.user.public_id), "fingerprint": b64(morgan.identity.fingerprint()),
                   "created_ms": 1_790_000_000_000}
    rogue = crypto.custodian_identity(bytes(32))
    out.append(team.scenario("a lead appointed with a key the server made", reader="manager",
                             detail=epoch4(morgan, {morgan: "lead", priya: "deputy"},
                                           [{**appointment, "signature": b64(rogue.sign(statement))}]),
                             expect={"error": "not signed by the lead"}))
    out.append(team.scenario("a lead appointed by the custodians", reader="manager",
                             detail=epoch4(morgan, {morgan: "lead", priya: "deputy"},
                                           [{**appointment, "signature": b64(team.custodian.sign(statement))}]),
                             expect={"error": None}))
    out.append(team.scenario("a custodians' appointment replayed for another epoch", reader="manager",
                             detail=epoch4(morgan, {morgan: "lead", priya: "deputy"},
                                           [{**appointment, "epoch": 2, "signature": b64(team.custodian.sign(statement))}]),
                             expect={"error": "not signed by the lead"}))
    # Review: appointments a server mangled are passed over by both clients, never a crash.
    honest4 = epoch4(priya, {sam: "lead", priya: "deputy", morgan: "member"})
    for mangled in ({"epoch": 3}, 5, "appointments", [{**appointment, "appointee": 7,
                                                       "signature": b64(team.custodian.sign(statement))}]):
        out.append(team.scenario(f"a server lists appointments as {type(mangled).__name__}", reader="manager",
                                 detail={**honest4, "lead_appointments": mangled}, expect={"error": None}))

    # Item 3: Morgan removed, then shown as accepted again on the old invitation.
    sam.rotate(ws, remove=morgan.user)
    readmit = team.answers("lead")[0]
    old = Membership.objects.filter(workspace=ws, professional=morgan.user).order_by("-pk").first()
    readmit["members"] = [c for c in readmit["members"] if c["id"] != str(morgan.user.public_id)] + [{
        **selectors.professional_card(morgan.user), "role": "member", "state": "accepted",
        "invited_by": str(sam.user.public_id), "invite_signature": b64(old.invite_signature),
        "invite_epoch": old.invite_epoch, "invite_nonce": b64(old.invite_nonce), "first_epoch": None,
        "history_shared": False}]
    out.append(team.scenario("a removed member re-admitted on the old invitation", reader="lead", detail=readmit,
                             plan={}, expect={"plan_refused": [str(morgan.user.public_id)]}))

    # Item 1: Priya resets her password. Her new key is trusted only through a member's confirmation:
    # with the confirmation deleted (or withheld) her new posts are refused and the lead keeps sealing to
    # the key the manifest lists.
    password_reset(team.personas["gp"], "a brand new passphrase for priya")
    priya.refresh_identity()
    sam.confirm(ws, priya.user)
    sam.rekey(ws, priya.user, list(range(2, ws.current_epoch + 1)))
    post = priya.post(ws, "update", {"text": "After my reset"}).post
    confirmed, _ = team.answers("lead")
    unconfirmed = copy.deepcopy(confirmed)
    unconfirmed["key_confirmations"] = []
    out.append(team.scenario("a reset member's new key, confirmation withheld", reader="lead", detail=unconfirmed,
                             plan={}, expect={"refused_post": str(post.post_id), "plan_warnings_min": 1,
                                              "plan_key_of": [str(priya.user.public_id), "old"]}))
    out.append(team.scenario("a reset member's new key, confirmed by the lead", reader="lead", plan={},
                             expect={"refused": 0, "plan_key_of": [str(priya.user.public_id), "new"]}))

    # Item 4's other half: the lead resets too. The next epoch is signed with the lead's new key, which a
    # member confirmed (Priya, whose own new key Sam's old one confirmed): believed. Without that
    # confirmation the same manifest is refused.
    password_reset(team.personas["lead"], "a brand new passphrase for sam")
    sam.refresh_identity()
    priya.confirm(ws, sam.user)
    sam.rotate(ws)
    honest, _ = team.answers("gp")
    out.append(team.scenario("an epoch signed with the lead's new key, confirmed by a member", detail=honest,
                             expect={"error": None}))
    withheld = copy.deepcopy(honest)
    withheld["key_confirmations"] = [c for c in withheld["key_confirmations"] if c["subject"] != str(sam.user.public_id)]
    out.append(team.scenario("an epoch signed with the lead's new key, nobody confirmed it", detail=withheld,
                             expect={"error": "not signed by the lead"}))
    return out


def hash_of(payload: dict) -> bytes:
    return crypto.post_hash(*(base64.b64decode(payload[k]) for k in ("header", "nonce", "ciphertext")))


def crypto_now() -> int:
    return now_ms()


def outcome(s: dict) -> dict:
    """What tacclient makes of a scenario, in a shape the browser's OUTCOME_JS reproduces exactly."""
    reader = s["reader"]
    identity = crypto.Identity(sign_seed=base64.b64decode(reader["sign_seed"]),
                               box_secret=base64.b64decode(reader["box_secret"]))
    result: dict = {"error": None}
    try:
        keys = verify_workspace(s["detail"], identity, my_id=uuid.UUID(reader["id"]), memory=s["memory"] or None,
                                verified=s["verified"], pin=CustodianPin.parse(s["pin"]))
    except TrustError as exc:
        result["error"] = str(exc)
        return result
    result["key_problems"] = len(keys.problems)
    result["epoch_keys"] = sorted(keys.epoch_keys)
    record = Record(keys, reference=s["reference"])
    for payload in s["posts"]:
        record.add(payload)
    record.check_memory(s["memory"] or None)
    result["warnings"] = len(record.warnings)
    result["problems"] = len(record.problems) + len(keys.problems)
    result["entries"] = [{"seq": e.seq, "post_id": e.post_id, "refused": e.refused is not None, "notes": len(e.notes),
                          "status": e.status, "acks": len(e.acks), "events": len(e.events),
                          "retracted": e.retracted_by is not None, "body": e.body, "rag": e.rag,
                          "ratings": [[r.old, r.new, r.reason, str(r.by)] for r in e.ratings]} for e in record.entries]
    if s["plan"] is not None:
        cards = {pid: card for pid, card in member_cards(s["detail"]).items() if card["state"] in CURRENT_STATES}
        try:
            options = s["plan"]
            plan = plan_epoch_members(
                keys, cards, my_id=uuid.UUID(reader["id"]), my_fingerprint=identity.fingerprint(),
                remove=uuid.UUID(options["remove"]) if options.get("remove") else None,
                new_lead=uuid.UUID(options["new_lead"]) if options.get("new_lead") else None,
                admit={uuid.UUID(p) for p in options["admit"]} if "admit" in options else None,
                deputies={uuid.UUID(p) for p in options["deputies"]} if "deputies" in options else None)
            result["plan"] = {"members": sorted([str(m.public_id), b64(m.fingerprint), m.role] for m in plan.members),
                              "admitted": sorted(str(p) for p in plan.admitted),
                              "refused": sorted(str(p) for p in plan.refused), "warnings": len(plan.warnings),
                              "error": None}
        except TrustError as exc:
            result["plan"] = {"error": str(exc)}
    return result


def check(s: dict, got: dict) -> None:
    """The scenario's own expectations, asserted on an outcome (Python's; the browser's equals it)."""
    expect = s["expect"]
    if "error" in expect:
        if expect["error"] is None:
            assert got["error"] is None, (s["name"], got["error"])
        else:
            assert got["error"] and expect["error"] in got["error"], (s["name"], got["error"])
            return
    entries = got["entries"]
    by_id = {e["post_id"]: e for e in entries if not e["refused"]}
    action = next((e for e in entries if not e["refused"] and e["status"]), None)
    for name, value in expect.items():
        if name == "problems":
            assert got["problems"] == value, (s["name"], got)
        elif name == "problems_min":
            assert got["problems"] >= value, (s["name"], got)
        elif name == "warnings":
            assert got["warnings"] == value, (s["name"], got)
        elif name == "warnings_min":
            assert got["warnings"] >= value, (s["name"], got)
        elif name == "key_problems":
            assert got["key_problems"] == value, (s["name"], got)
        elif name == "no_key_for":
            assert value not in got["epoch_keys"], (s["name"], got)
        elif name == "status":
            assert action is not None and action["status"] == value, (s["name"], entries)
        elif name == "acks":
            assert sum(e["acks"] for e in entries) == value, (s["name"], entries)
        elif name == "refused":
            assert sum(e["refused"] for e in entries) == value, (s["name"], entries)
        elif name == "refused_post":
            assert any(e["refused"] for e in entries if e["post_id"] == value), (s["name"], entries)
        elif name == "notes_min":
            assert sum(e["notes"] for e in entries) >= value, (s["name"], entries)
        elif name == "update_body":
            assert any(e["body"] == value for e in by_id.values()), (s["name"], entries)
        elif name == "rating":
            post_id, changes = value
            assert by_id[post_id]["rag"] == changes[-1][1], (s["name"], entries)
            assert [r[:2] for r in by_id[post_id]["ratings"]] == changes, (s["name"], entries)
        elif name == "ignored":
            assert all(by_id[p]["notes"] >= 1 for p in value), (s["name"], entries)
        elif name == "update_retracted":
            assert not any(e["retracted"] for e in entries), (s["name"], entries)
        elif name == "plan_error":
            assert got["plan"]["error"] and value in got["plan"]["error"], (s["name"], got["plan"])
        elif name == "plan_refused":
            assert got["plan"]["refused"] == sorted(value), (s["name"], got["plan"])
        elif name == "plan_admitted":
            assert got["plan"]["admitted"] == value, (s["name"], got["plan"])
        elif name == "plan_warnings_min":
            assert got["plan"]["warnings"] >= value, (s["name"], got["plan"])
        elif name == "plan_leaves_out":
            assert all(m[0] != value for m in got["plan"]["members"]), (s["name"], got["plan"])
        elif name == "plan_role_of":
            pid, role = value
            assert next(m[2] for m in got["plan"]["members"] if m[0] == pid) == role, (s["name"], got["plan"])
        elif name == "plan_keeps":
            assert any(m[0] == value for m in got["plan"]["members"]), (s["name"], got["plan"])
        elif name == "plan_key_of":
            pid, which = value
            card = next(c for c in s["detail"]["members"] if c["id"] == pid)
            used = next(m for m in got["plan"]["members"] if m[0] == pid)
            assert (used[1] == card["fingerprint"]) == (which == "new"), (s["name"], got["plan"])
        elif name in ("error",):
            continue
        else:
            raise AssertionError(f"unknown expectation {name}")
