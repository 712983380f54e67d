"""A concern's rating change (issue 10, item 3): the new rating signed in the header, the reason sealed in
the body, made by the concern's author or the lead of the time and by nobody else.

The first tests are the reader's rule alone (tacprotocol/record.py): posts the server would refuse are
sealed here and handed to the record as a hostile server would serve them, so they need no live server.
The last ones go through the live server: TacClient.change_rating and `tac rate`."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from accounts.models import Professional
from messaging import custodian as custodian_pin
from messaging import selectors
from messaging.models import Post
from tacclient.cli import render_thread
from tacclient.client import TacError, workspace_from_detail
from tacprotocol.record import Record
from tacprotocol.workspace import CustodianPin
from tests.messaging.factories import Client, join
from tests.scenarios import hash_of, payload_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def thread(lead, gp, manager, custodian, capture_events):
    """Sam leads; Dr Priya GP raised an amber concern; Morgan Manager is a member. Returns the workspace,
    the three clients, the concern, and the posts as the server serves them to the GP."""
    sam, priya, morgan = Client(lead, custodian), Client(gp, custodian), Client(manager, custodian)
    workspace = sam.create_workspace({"name": "Robin Example"})
    join(sam, workspace, priya, morgan)
    concern = priya.post(workspace, "concern", {"category": "neglect", "detail": "Missed visits"}, rag="amber").post
    return workspace, sam, priya, morgan, concern, served(workspace, priya)


def served(workspace, reader: Client) -> list[dict]:
    workspace.refresh_from_db()
    return selectors.post_list(professional=reader.user, workspace=workspace, limit=1000)


def serve(posts: list[dict], workspace, client: Client, kind: str, body: dict, *, after: dict | None = None,
          **fields) -> dict:
    """A post signed by `client`, following `after` (else the newest post), served as the next post whether
    or not the server should have stored it."""
    after = after or posts[-1]
    envelope = client.seal(workspace, kind, body, prev=(after["seq"], hash_of(after)), **fields)
    payload = payload_of(workspace, envelope, seq=posts[-1]["seq"] + 1, author=client.user.public_id,
                         epoch=client.keys(workspace).current_epoch, kind=kind,
                         created_at=dt.datetime.now(tz=dt.UTC).isoformat())
    posts.append(payload)
    return payload


def rate(posts: list[dict], workspace, client: Client, concern, rag: str, reason: str, **options) -> dict:
    return serve(posts, workspace, client, "rating_change", {"reason": reason}, target=concern.post_id, rag=rag,
                 **options)


def name_of(public_id: uuid.UUID) -> str:
    return Professional.objects.get(public_id=public_id).full_name


def read(workspace, reader: Client, posts: list[dict]) -> Record:
    """The record `reader` assembles from what the server holds for them (Sam also sees epoch 1) and the
    posts added to `posts` here, in their order."""
    stored = served(workspace, reader)
    ids = {p["post_id"] for p in stored}
    record = Record(reader.keys(workspace), reference=workspace.reference, name_of=name_of)
    for payload in stored + [p for p in posts if p["post_id"] not in ids]:
        record.add(payload)
    return record


def test_it_applies_changes_by_the_author_and_the_lead_in_order_and_keeps_their_history(thread, lead, gp):
    workspace, sam, priya, morgan, concern, posts = thread
    raised = rate(posts, workspace, priya, concern, "red", "A second missed appointment")
    lowered = rate(posts, workspace, sam, concern, "green", "Seen at home; all well")

    for reader in (sam, priya, morgan):
        record = read(workspace, reader, posts)
        entry = record.get(concern.post_id)
        assert entry.rag == "green" and entry.header.rag == "amber"
        assert [(r.old, r.new, r.reason, r.by) for r in entry.ratings] == [
            ("amber", "red", "A second missed appointment", gp.user.public_id),
            ("red", "green", "Seen at home; all well", lead.user.public_id)]
        assert [r.entry.post_id for r in entry.ratings] == [raised["post_id"], lowered["post_id"]]
        assert entry.ratings[0].signed_time == entry.ratings[0].entry.opened.signed_time
        assert [e.kind for e in entry.events] == ["rating_change", "rating_change"]
        assert entry.notes == [] and not record.warnings and not record.problems
        assert record.get(raised["post_id"]).ignored is None


def test_it_ignores_a_change_by_someone_who_neither_raised_the_concern_nor_leads(thread):
    workspace, _sam, _priya, morgan, concern, posts = thread
    forbidden = rate(posts, workspace, morgan, concern, "red", "I think it is worse")

    record = read(workspace, morgan, posts)
    entry = record.get(concern.post_id)
    assert (entry.rag, entry.ratings, entry.events) == ("amber", [], [])
    assert entry.notes == ["A rating change signed by Morgan Manager, who neither raised this concern nor leads the "
                           "workspace, was ignored"]
    assert record.get(forbidden["post_id"]).notes == [
        f"Ignored: only the author of #{entry.seq} or the lead professional may change its rating"]


def test_it_ignores_a_change_to_the_rating_it_has_and_any_after_a_retraction(thread):
    workspace, sam, priya, _morgan, concern, posts = thread
    same = rate(posts, workspace, sam, concern, "amber", "Still amber")
    serve(posts, workspace, priya, "retraction", {"reason": "Posted in error"}, target=concern.post_id)
    late = rate(posts, workspace, priya, concern, "red", "After all")

    record = read(workspace, sam, posts)
    entry = record.get(concern.post_id)
    assert (entry.rag, entry.ratings) == ("amber", [])
    assert record.get(same["post_id"]).ignored == "the concern is already amber"
    assert record.get(late["post_id"]).notes == ["Ignored: the concern was retracted: its rating no longer changes"]
    assert entry.notes == [
        f"A change of rating to amber signed by Sam Lead (#{same['seq']}) was ignored: the concern is already amber",
        f"A change of rating to red signed by Dr Priya GP (#{late['seq']}) was ignored: the concern was retracted: "
        f"its rating no longer changes"]


def test_it_judges_a_change_where_signed_order_puts_it_not_where_the_server_numbers_it(thread):
    """Priya raises her concern to red, then Sam, having read that, lowers it to amber. The server swaps
    their numbers: in its order Sam's change would meet an amber concern and be ignored, and Priya's would
    leave it red; the reader puts Sam's after Priya's, which it follows, and ends amber."""
    workspace, sam, priya, _morgan, concern, posts = thread
    raised = rate(posts, workspace, priya, concern, "red", "Worse")
    lowered = rate(posts, workspace, sam, concern, "amber", "Better than we feared", after=raised)
    raised["seq"], lowered["seq"] = lowered["seq"], raised["seq"]
    posts[-2:] = [lowered, raised]

    record = read(workspace, priya, posts)
    entry = record.get(concern.post_id)
    assert entry.rag == "amber"
    assert [(r.old, r.new) for r in entry.ratings] == [("amber", "red"), ("red", "amber")]
    assert record.get(lowered["post_id"]).ignored is None and entry.notes == []
    assert any("order was changed" in n for n in record.get(lowered["post_id"]).notes)


def test_it_takes_the_lead_of_the_time_from_the_changes_epoch(thread, lead, manager):
    """Sam raises the concern while he leads, then hands the lead to Morgan: his change made as lead still
    counts, his next one (a former lead's) is ignored, and Morgan's counts."""
    workspace, sam, priya, morgan, concern, posts = thread
    while_lead = rate(posts, workspace, sam, concern, "red", "Worse")
    sam.rotate(workspace, new_lead=manager.user)
    former = rate(posts, workspace, sam, concern, "amber", "Better")
    current = rate(posts, workspace, morgan, concern, "green", "Closed at the review")

    record = read(workspace, priya, posts)
    entry = record.get(concern.post_id)
    assert [(r.old, r.new, r.by) for r in entry.ratings] == [
        ("amber", "red", lead.user.public_id), ("red", "green", manager.user.public_id)]
    assert [r.entry.post_id for r in entry.ratings] == [while_lead["post_id"], current["post_id"]]
    assert record.get(former["post_id"]).notes == [
        f"Ignored: only the author of #{entry.seq} or the lead professional may change its rating"]


def test_render_thread_shows_the_rating_now_and_every_change(thread):
    workspace, sam, _priya, _morgan, concern, posts = thread
    rate(posts, workspace, sam, concern, "red", "A second missed appointment")
    ws = workspace_from_detail(sam.detail(workspace), sam.identity, my_id=sam.user.public_id,
                               pin=CustodianPin.parse(custodian_pin.pin_read()))
    text = render_thread(ws, read(workspace, sam, posts))
    assert text.splitlines()[0].startswith(f"{workspace.reference} · open · RAG RED (from the signed posts)")
    assert "concern · RED · Neglect\n    Missed visits\n    Rating changed from amber to red by Sam Lead, " in text
    assert ": A second missed appointment\n" in text
    assert f"rating_change · red → #{concern.seq}\n    A second missed appointment" in text


# --- through the live server ----------------------------------------------------------------------------


@pytest.fixture
def team(connect, lead, gp, manager, custodian):
    """Sam leads; Dr Priya GP and Morgan Manager are admitted members. (lead's, GP's, manager's client, id)."""
    lead_client, gp_client, manager_client = connect(lead), connect(gp), connect(manager)
    ws_id = uuid.UUID(lead_client.create_workspace({"name": "Robin Example"})["id"])
    for persona, client in ((gp, gp_client), (manager, manager_client)):
        lead_client.invite(ws_id, persona.user.email)
        client.accept(ws_id)
    lead_client.rotate(ws_id, admit=[gp.user.public_id, manager.user.public_id])
    return lead_client, gp_client, manager_client, ws_id


def test_the_lead_and_the_author_change_a_rating_that_every_reader_sees(team, lead, gp):
    lead_client, gp_client, manager_client, ws_id = team
    concern = gp_client.concern(ws_id, "neglect", "amber", "Missed two appointments")
    with pytest.raises(ValueError, match="a reason is required: say why the rating changed"):
        lead_client.change_rating(ws_id, concern.post_id, "red", "  ")
    with pytest.raises(ValueError, match="rag must be one of red, amber, green"):
        lead_client.change_rating(ws_id, concern.post_id, "", "No rating")
    with pytest.raises(ValueError, match="reason must be 20,000 characters or fewer"):
        lead_client.change_rating(ws_id, concern.post_id, "red", "x" * 20_001)
    lead_client.change_rating(ws_id, concern.post_id, "red", "A third missed appointment")
    gp_client.read(ws_id)
    gp_client.change_rating(ws_id, concern.post_id, "amber", "Seen at home today")

    for reader in (lead_client, gp_client, manager_client):
        record = reader.record(ws_id)
        entry = record.get(concern.post_id)
        assert entry.rag == "amber"
        assert [(r.old, r.new, r.reason, r.by) for r in entry.ratings] == [
            ("amber", "red", "A third missed appointment", lead.user.public_id),
            ("red", "amber", "Seen at home today", gp.user.public_id)]
        assert entry.notes == [] and not record.warnings and not record.problems
    stored = Post.objects.filter(target__post_id=concern.post_id, kind="rating_change").order_by("seq")
    assert [p.rag for p in stored] == ["red", "amber"]


def test_the_server_refuses_a_change_by_anyone_else_or_to_the_rating_it_has(team):
    lead_client, gp_client, manager_client, ws_id = team
    concern = gp_client.concern(ws_id, "housing", "amber", "Damp in the flat")
    with pytest.raises(TacError) as refused:
        manager_client.change_rating(ws_id, concern.post_id, "red", "Looks worse to me")
    assert refused.value.status == 403
    with pytest.raises(TacError) as refused:
        lead_client.change_rating(ws_id, concern.post_id, "amber", "No change")
    assert refused.value.status == 400
    update = gp_client.update(ws_id, "Seen in clinic")
    with pytest.raises(TacError) as refused:
        gp_client.change_rating(ws_id, update.post_id, "red", "Not a concern")
    assert refused.value.status == 400
    entry = lead_client.record(ws_id).get(concern.post_id)
    assert (entry.rag, entry.ratings) == ("amber", [])
    gp_client.post(ws_id, "retraction", {"reason": "Wrong family"}, target=concern.post_id)
    with pytest.raises(TacError) as refused:
        gp_client.change_rating(ws_id, concern.post_id, "red", "After all")
    assert refused.value.status == 409


def test_tac_rate_checks_the_change_against_the_signed_record_then_posts_it(tac, team, lead, gp, manager):
    lead_client, gp_client, _manager_client, ws_id = team
    reference = lead_client.workspace(ws_id).reference
    concern = gp_client.concern(ws_id, "neglect", "amber", "Missed two appointments")
    update = gp_client.update(ws_id, "Seen in clinic")
    seq = concern.seq

    code, _, err = tac(lead, "rate", reference, str(seq), "red")
    assert code == 2 and "the following arguments are required: --reason" in err
    code, _, err = tac(lead, "rate", reference, str(seq), "purple", "--reason", "x")
    assert code == 2 and "invalid choice: 'purple'" in err
    code, _, err = tac(lead, "rate", reference, str(seq), "red", "--reason", "   ")
    assert (code, err.splitlines()[-1]) == (2, "tac rate: error: argument --reason: must not be empty")
    code, _, err = tac(lead, "rate", reference, str(update.seq), "red", "--reason", "x")
    assert (code, err) == (2, f"tac: #{update.seq} is not a concern in {reference}\n")
    code, _, err = tac(manager, "rate", reference, str(seq), "red", "--reason", "x")
    assert (code, err) == (2, f"tac: #{seq}: only the author of the concern or the lead professional can change its "
                              f"rating\n")
    code, _, err = tac(lead, "rate", reference, f"#{seq}", "amber", "--reason", "x")
    assert (code, err) == (2, f"tac: #{seq} is already amber\n")

    code, out, _ = tac(lead, "rate", reference, f"#{seq}", "red", "--reason", "A third missed appointment")
    assert (code, out) == (0, f"Concern #{seq} changed from amber to red: posted as #{update.seq + 1}.\n")
    code, out, _ = tac(gp, "show", reference)
    assert code == 0
    assert out.splitlines()[0].startswith(f"{reference} · open · RAG RED (from the signed posts)")
    assert "concern · RED · Neglect\n    Missed two appointments\n    Rating changed from amber to red by Sam Lead, " in out
    assert ": A third missed appointment\n" in out

    gp_client.read(ws_id)
    gp_client.post(ws_id, "retraction", {"reason": "Posted in the wrong workspace"}, target=concern.post_id)
    code, _, err = tac(lead, "rate", reference, str(seq), "green", "--reason", "x")
    assert (code, err) == (2, f"tac: #{seq} was retracted: its rating no longer changes\n")

