"""`tac` run in-process (main([...])) against the live server: output, exit codes, never a traceback."""

from __future__ import annotations

import datetime as dt
import functools
import uuid

import pytest

from messaging.models import Post
from tacclient import cli
from tacclient.cli import main, render_thread

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def workspace(connect, lead, gp, custodian):
    """A workspace the lead opened and invited the GP to (not yet accepted): (lead's client, reference)."""
    lead_client = connect(lead)
    created = lead_client.create_workspace({"name": "Mia Example", "nhs_number": "9434765919"})
    lead_client.invite(created["id"], gp.user.email)
    return lead_client, created["reference"]


def test_it_accepts_posts_and_shows_the_thread(tac, workspace, lead, gp, tmp_path, monkeypatch):
    lead_client, reference = workspace
    code, out, _ = tac(gp, "workspaces")
    assert code == 0 and reference in out and "invited" in out

    assert tac(gp, "accept", reference)[:2] == (0, "Accepted. You can read the thread once the lead's device "
                                                   "admits you to the workspace's keys.\n")
    lead_client.rotate(reference, admit=[gp.user.public_id])

    code, out, _ = tac(gp, "concern", reference, "--category", "neglect", "--rag", "red",
                       "--detail", "Missed two appointments")
    assert (code, out) == (0, "Concern posted as #3.\n")
    due = dt.date.today().isoformat()  # the earliest the server takes; overdue once "today" is later
    code, out, _ = tac(lead, "action", reference, "--title", "Home visit", "--owner", gp.user.email,
                       "--due", due, "--detail", "Check the flat")
    assert (code, out) == (0, f"Action posted as #4, due {due}.\n")
    assert tac(gp, "update", reference, "Seen in clinic")[:2] == (0, "Update posted as #5.\n")
    lead_client.acknowledge(reference, Post.objects.get(seq=3, workspace__reference=reference).post_id)

    later = functools.partial(cli.render_thread, today=dt.date.today() + dt.timedelta(days=2))
    monkeypatch.setattr(cli, "render_thread", later)
    code, out, _ = tac(lead, "show", reference)
    assert code == 0
    assert out.splitlines()[0] == f"{reference} · open · RAG RED (from the signed posts) · lead Sam Lead"
    assert "Name: Mia Example" in out
    assert "Dr Priya GP (Riverside Medical Practice) · concern · RED · Neglect\n    Missed two appointments" in out
    assert "    Acknowledged by Sam Lead" in out
    assert f"action · “Home visit” · owner Dr Priya GP · due {due} · OVERDUE\n    Check the flat" in out
    assert "update\n    Seen in clinic" in out
    # The GP sees what they are entitled to: the re-posted details, not the first epoch.
    code, out, _ = tac(gp, "show", str(Post.objects.filter(workspace__reference=reference).first().workspace.public_id))
    assert code == 0 and out.count("Name: Mia Example") == 1
    # Each account keeps a local copy of its saved state (sealed under its key), readable by it alone.
    saved = sorted((tmp_path / "state" / "tac").glob("*.json"))
    assert len(saved) == 2 and all(path.stat().st_mode & 0o777 == 0o600 for path in saved)


def test_it_says_the_thread_opens_after_admission(tac, workspace, gp):
    _lead, reference = workspace
    code, out, _ = tac(gp, "show", reference)
    assert (code, out) == (0, f"{reference}: you are invited; the thread opens once the lead's device admits you.\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["concern", "TAC-2026-0001", "--category", "neglect", "--rag", "purple", "--detail", "y"],
         "invalid choice: 'purple'"),
        (["concern", "TAC-2026-0001", "--category", "sadness", "--rag", "red", "--detail", "y"],
         "invalid choice: 'sadness'"),
        (["action", "TAC-2026-0001", "--title", "t", "--owner", "a@b.c", "--due", "2026-13-01"], "is not a date"),
        (["update", "not-a-reference", "text"], "is neither a workspace reference"),
        (["update", "TAC-2026-0001", "  "], "must not be empty"),
        (["nonsense"], "invalid choice: 'nonsense'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_it_refuses_bad_arguments_with_exit_code_2(tac, lead, argv, message):
    code, out, err = tac(lead, *argv)
    assert code == 2
    assert message in err


def test_it_refuses_an_unknown_workspace_reference_with_exit_code_2(tac, lead):
    code, _, err = tac(lead, "update", "TAC-1999-0001", "text")
    assert (code, err) == (2, "tac: no workspace TAC-1999-0001 among yours\n")


def test_it_refuses_an_owner_who_is_not_a_member_with_exit_code_2(tac, workspace, lead, outsider):
    _lead, reference = workspace
    code, _, err = tac(lead, "action", reference, "--title", "t", "--owner", outsider.user.email,
                         "--due", (dt.date.today() + dt.timedelta(days=30)).isoformat())
    assert code == 2
    assert err == f"tac: --owner: {outsider.user.full_name} is not an active member of {reference}\n"


def test_it_needs_an_email_address(live_server_url, monkeypatch, capsys, transactional_db):
    monkeypatch.delenv("TAC_EMAIL", raising=False)
    monkeypatch.setattr("sys.stdin", None)
    assert main(["--url", live_server_url, "workspaces"]) == 2
    assert "email address is needed" in capsys.readouterr().err


def test_it_reports_a_wrong_password_with_the_servers_reason_and_exit_code_1(tac, lead):
    code, _, err = tac(lead, "workspaces", password="wrong password entirely")
    assert (code, err) == (1, "tac: refused (HTTP 400): Enter the correct email address and password\n")


def test_it_reports_a_server_refusal_with_exit_code_1(tac, workspace, outsider):
    """An outsider naming someone else's workspace by id gets the server's 404 reason."""
    lead_client, reference = workspace
    ws_id = lead_client.workspace_id(reference)
    code, _, err = tac(outsider, "show", str(ws_id))
    assert (code, err) == (1, "tac: refused (HTTP 404): No such workspace, or you are not a member\n")


def test_it_reports_an_unreachable_server_with_exit_code_1(monkeypatch, capsys, lead):
    monkeypatch.setenv("TAC_PASSWORD", "x")
    code = main(["--url", "http://127.0.0.1:9", "--email", "a@b.c", "--totp", "123456", "workspaces"])
    assert code == 1
    assert capsys.readouterr().err.startswith("tac: cannot reach http://127.0.0.1:9")


def test_it_neutralises_terminal_escapes_in_decrypted_text(team_thread):
    ws, thread = team_thread
    text = render_thread(ws, thread)
    assert "\x1b" not in text and "\N{REPLACEMENT CHARACTER}[2J" in text


@pytest.fixture
def team_thread(connect, lead, custodian):
    client = connect(lead)
    created = client.create_workspace({"name": "Zed"})
    client.update(created["id"], "clear the screen \x1b[2J please")
    return client.workspace(created["id"]), client.record(uuid.UUID(created["id"]))


def test_it_shows_edits_and_retractions_as_the_author_made_them(connect, lead, custodian):
    client = connect(lead)
    ws_id = uuid.UUID(client.create_workspace({"name": "Zed"})["id"])
    update = client.update(ws_id, "first words")
    client.post(ws_id, "edit", {"text": "second words"}, target=update.post_id)
    concern = client.concern(ws_id, "housing", "amber", "Damp")
    client.post(ws_id, "retraction", {"reason": "posted in the wrong workspace"}, target=concern.post_id)
    text = render_thread(client.workspace(ws_id), client.record(ws_id))
    assert "update · edited in #3\n    second words" in text and "first words" not in text
    assert "concern · AMBER · Housing · RETRACTED: posted in the wrong workspace\n    Damp" in text


def test_it_moves_an_action_through_its_life_and_shows_who_did_what(tac, workspace, lead, gp, outsider):
    lead_client, reference = workspace
    tac(gp, "accept", reference)
    lead_client.rotate(reference, admit=[gp.user.public_id])
    due = (dt.date.today() + dt.timedelta(days=7)).isoformat()
    assert tac(lead, "action", reference, "--title", "Home visit", "--owner", gp.user.email, "--due", due)[:2] == (
        0, f"Action posted as #3, due {due}.\n")

    assert tac(gp, "action-status", reference, "#3", "accepted")[:2] == (0, "Action #3 accepted: posted as #4.\n")
    code, out, _ = tac(lead, "show", reference)
    assert f"action · “Home visit” · owner Dr Priya GP · due {due} · accepted" in out
    assert "    Accepted by Dr Priya GP\n" in out
    code, _, err = tac(gp, "action-status", reference, "3", "done")
    assert (code, err) == (2, "tac: --note: a completion note is required: say what was done\n")
    assert tac(gp, "action-status", reference, "3", "done", "--note", "Visited")[:2] == (
        0, "Action #3 done: posted as #5.\n")
    code, _, err = tac(gp, "action-status", reference, "3", "confirmed")
    assert (code, err) == (2, "tac: #3: only the lead professional can make an action confirmed\n")
    assert tac(lead, "action-status", reference, "3", "confirmed")[:2] == (0, "Action #3 confirmed: posted as #6.\n")
    code, _, err = tac(lead, "action-status", reference, "3", "cancelled", "--note", "Too late")
    assert (code, err) == (2, "tac: #3: an action that is confirmed cannot be cancelled\n")
    code, _, err = tac(lead, "action-status", reference, "2", "accepted")
    assert (code, err) == (2, f"tac: #2 is not an action in {reference}\n")
    code, _, err = tac(lead, "action-status", reference, "3", "finished")
    assert code == 2 and "invalid choice: 'finished'" in err

    assert tac(lead, "action", reference, "--title", "Call school", "--owner", lead.user.email, "--due", due)[0] == 0
    code, _, err = tac(lead, "reassign", reference, "7", "--owner", outsider.user.email)
    assert (code, err) == (2, f"tac: --owner: {outsider.user.full_name} is not an active member of {reference}\n")
    code, _, err = tac(gp, "reassign", reference, "7", "--owner", gp.user.email)
    assert (code, err) == (2, "tac: #7: only the lead professional can make an action reassigned\n")
    assert tac(lead, "reassign", reference, "7", "--owner", gp.user.email, "--note", "You see them Monday")[:2] == (
        0, "Action #7 reassigned to Dr Priya GP, who must accept it: posted as #8.\n")

    code, out, _ = tac(gp, "show", reference)
    assert code == 0
    assert (f"action · “Home visit” · owner Dr Priya GP · due {due} · confirmed\n"
            "    Accepted by Dr Priya GP\n    Done by Dr Priya GP: Visited\n    Confirmed by Sam Lead\n") in out
    assert (f"action · “Call school” · owner Dr Priya GP · due {due} · open\n"
            "    Reassigned to Dr Priya GP by Sam Lead: You see them Monday\n") in out
    assert "action_status · reassigned → #7 · to Dr Priya GP\n    You see them Monday" in out
