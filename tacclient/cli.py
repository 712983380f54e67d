"""`tac`: the command line of the Python client. Every command signs in (password and a TOTP code), does
one thing with the same end-to-end crypto as the browser, and exits: 0 done, 1 the server refused (its
reason is printed) or its answer could not be trusted, 2 bad input.

    export TAC_URL=http://127.0.0.1:8000 TAC_EMAIL=sam.lead@demo.tac
    tac workspaces
    tac show TAC-2026-0001
    tac concern TAC-2026-0001 --category neglect --rag red --detail "Missed two appointments"
    tac action TAC-2026-0001 --title "Home visit" --owner priya.gp@demo.tac --due 2026-03-01
    tac update TAC-2026-0001 "Seen in clinic today"
    tac accept TAC-2026-0001
    tac action-status TAC-2026-0001 4 accepted
    tac action-status TAC-2026-0001 4 done --note "Visited; all well"
    tac reassign TAC-2026-0001 4 --owner morgan.manager@demo.tac
    tac rate TAC-2026-0001 3 red --reason "Second missed appointment this month"
    tac deputies TAC-2026-0001 priya.gp@demo.tac
    tac renew-keys TAC-2026-0001
    tac custodian-appoint request.json --safety-number "..." --out appointment.json < two-shares.txt

`custodian-appoint` is the one command that needs no server and no sign-in: two records custodians run it
offline, with their shares on standard input, to appoint a lead for a workspace frozen without one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import hashlib
import json
import os
import re
import sys
import uuid
from collections.abc import Callable

from tacprotocol import actions, crypto, custodian
from tacprotocol.record import Record
from tacprotocol.wire import CONCERN_CATEGORIES, DETAILS_FIELDS, RAGS
from tacprotocol.workspace import b64d, b64e

from .client import (
    NOTE_REQUIRED,
    RATING_REASON_REQUIRED,
    TacClient,
    TacError,
    TacNetworkError,
    TrustError,
    Workspace,
)

WORKSPACE_HELP = "a workspace reference (TAC-2026-0001) or id"
SEQ_HELP = "the action's number in the thread (as `tac show` lists it: 4 or #4)"
CONCERN_SEQ_HELP = "the concern's number in the thread (as `tac show` lists it: 3 or #3)"
# How a change of an action's status reads in the thread: "Accepted by Dr Priya GP".
STATUS_WORDS = {"accepted": "Accepted", "done": "Done", "confirmed": "Confirmed", "reopened": "Reopened",
                "reassigned": "Reassigned", "cancelled": "Cancelled"}


class UsageError(Exception):
    """Bad input: exit code 2."""


def workspace_arg(text: str) -> str:
    text = text.strip()
    if re.fullmatch(r"(?i)TAC-\d{4}-\d{4,}", text):
        return text.upper()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a workspace reference (TAC-2026-0001) nor an id") from None


def date_arg(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD") from None


def seq_arg(text: str) -> int:
    digits = text.strip().removeprefix("#")
    if not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a post number (4 or #4)")
    return int(digits)


def text_arg(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tac", description="Team Around the Child from the command line, "
                                     "end-to-end encrypted.")
    parser.add_argument("--url", default=os.environ.get("TAC_URL", "http://127.0.0.1:8000"),
                        help="the server (env TAC_URL; default http://127.0.0.1:8000)")
    parser.add_argument("--email", default=os.environ.get("TAC_EMAIL"), help="your email address (env TAC_EMAIL)")
    parser.add_argument("--totp", default=os.environ.get("TAC_TOTP"),
                        help="the code from your authenticator app (env TAC_TOTP; asked for if missing)")
    parser.add_argument("--custodian-key-id", default=os.environ.get("TAC_CUSTODIAN_KEY_ID"),
                        help="refuse any custodian key but this one (hex id; env TAC_CUSTODIAN_KEY_ID)")
    parser.add_argument("--state-file", default=os.environ.get("TAC_STATE_FILE"),
                        help="a local copy of what your clients remember, encrypted and signed (env TAC_STATE_FILE; "
                             "default under $XDG_STATE_HOME/tac)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub = commands.add_parser("workspaces", help="list your workspaces and invitations")
    sub.set_defaults(run=cmd_workspaces)

    sub = commands.add_parser("show", help="the decrypted thread of a workspace")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.set_defaults(run=cmd_show)

    sub = commands.add_parser("concern", help="post a concern")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.add_argument("--category", required=True, choices=CONCERN_CATEGORIES, metavar="CATEGORY",
                     help=f"one of {', '.join(CONCERN_CATEGORIES)}")
    sub.add_argument("--rag", required=True, choices=RAGS, help="the RAG rating")
    sub.add_argument("--detail", required=True, type=text_arg, help="what you are concerned about")
    sub.set_defaults(run=cmd_concern)

    sub = commands.add_parser("action", help="post an action with an owner and a due date")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.add_argument("--title", required=True, type=text_arg)
    sub.add_argument("--owner", required=True, help="the owner's email address or public id (a member)")
    sub.add_argument("--due", required=True, type=date_arg, help="YYYY-MM-DD")
    sub.add_argument("--detail", default="")
    sub.set_defaults(run=cmd_action)

    sub = commands.add_parser("update", help="post an update")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.add_argument("text", type=text_arg)
    sub.set_defaults(run=cmd_update)

    sub = commands.add_parser("accept", help="accept an invitation to a workspace")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.set_defaults(run=cmd_accept)

    sub = commands.add_parser("action-status", help="move an action on: accepted (its owner takes it on), done, "
                              "confirmed (the lead), reopened or cancelled")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.add_argument("seq", type=seq_arg, metavar="SEQ", help=SEQ_HELP)
    sub.add_argument("status", choices=[c for c in actions.CHANGES if c != "reassigned"], metavar="STATUS",
                     help="one of accepted, done, confirmed, reopened, cancelled")
    sub.add_argument("--note", default="", help="what was done (required for done), or why (required for "
                                                "reopened and cancelled)")
    sub.set_defaults(run=cmd_action_status)

    sub = commands.add_parser("reassign", help="(the lead) give an action to another member, who must accept it")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.add_argument("seq", type=seq_arg, metavar="SEQ", help=SEQ_HELP)
    sub.add_argument("--owner", required=True, help="the new owner's email address or public id (a member)")
    sub.add_argument("--note", default="", help="why, for the new owner")
    sub.set_defaults(run=cmd_reassign)

    sub = commands.add_parser("rate", help="(the concern's author or the lead) change a concern's RAG rating, "
                              "saying why")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.add_argument("seq", type=seq_arg, metavar="SEQ", help=CONCERN_SEQ_HELP)
    sub.add_argument("rag", choices=RAGS, metavar="RAG", help=f"the new rating: one of {', '.join(RAGS)}")
    sub.add_argument("--reason", required=True, type=text_arg, help="why the rating changed (encrypted; required)")
    sub.set_defaults(run=cmd_rate)

    sub = commands.add_parser("team", help="the signed membership, with safety numbers and changed keys")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.set_defaults(run=cmd_team)

    sub = commands.add_parser("confirm", help="after comparing a colleague's safety number with them: admit their key")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.add_argument("member", help="their email address or public id")
    sub.add_argument("--safety-number", required=True, type=text_arg,
                     help="the thirty digits they read out to you (must match their key)")
    sub.set_defaults(run=cmd_confirm)

    sub = commands.add_parser("deputies", help="(the lead) name the deputies who carry the workspace on if you leave; "
                              "the keys are renewed")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.add_argument("members", nargs="*", metavar="MEMBER",
                     help="each deputy's email address or public id (none: no deputies)")
    sub.set_defaults(run=cmd_deputies)

    sub = commands.add_parser("renew-keys", help="(the lead or a deputy) start a new key epoch: after someone left, "
                              "or, with --take-over, to take the lead from a lead who has left")
    sub.add_argument("workspace", type=workspace_arg, help=WORKSPACE_HELP)
    sub.add_argument("--take-over", action="store_true",
                     help="(a deputy) name yourself lead: the lead has left (check with a colleague if unsure)")
    sub.set_defaults(run=cmd_renew_keys)

    sub = commands.add_parser("custodian-appoint", help="(records custodians, offline) sign a lead appointment "
                              "request with two shares of the custodian key, read from standard input")
    sub.add_argument("request", help="the request file from `manage.py lead_appointment_request`")
    sub.add_argument("--safety-number", required=True, type=text_arg,
                     help="the appointee's safety number, as they read it to you from their page")
    sub.add_argument("--out", required=True, help="where to write the signed appointment")
    sub.set_defaults(run=cmd_custodian_appoint)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the problem
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"tac: {exc}", file=sys.stderr)
        return 2
    except TacNetworkError as exc:
        print(f"tac: {exc.reason}", file=sys.stderr)
        return 1
    except TacError as exc:
        where = f" (HTTP {exc.status})" if exc.status else ""
        print(f"tac: refused{where}: {exc.reason}", file=sys.stderr)
        return 1
    except TrustError as exc:
        print(f"tac: not trusted, nothing was done with it: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tac: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for the user; the message says what broke
        print(f"tac: unexpected error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1


# --- signing in ----------------------------------------------------------------------------------------


def ask(prompt: str, *, secret: bool = False) -> str:
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError(f"{prompt.rstrip(': ').lower()} is needed and there is no terminal to ask on")
    return getpass.getpass(prompt) if secret else input(prompt)


def signed_in(args) -> TacClient:
    email = (args.email or "").strip() or ask("Email address: ").strip()
    if "@" not in email:
        raise UsageError("give your email address with --email or TAC_EMAIL")
    password = os.environ.get("TAC_PASSWORD") or ask("Password: ", secret=True)
    code = (args.totp or "").strip() or ask("Authenticator code: ").strip()
    if not code:
        raise UsageError("give the code from your authenticator app with --totp or TAC_TOTP")
    try:
        client = TacClient(args.url, custodian_key_id=args.custodian_key_id,
                           state_file=args.state_file or default_state_file(args.url, email))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    client.sign_in(email, password, code)
    for warning in client.warnings:
        print(f"tac: warning: {warning}", file=sys.stderr)
    return client


def default_state_file(url: str, email: str) -> str:
    """One file per server and account: the saved state is sealed under the account's identity key."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    name = hashlib.sha256(f"{url.rstrip('/')}|{email.lower()}".encode()).hexdigest()[:24]
    return os.path.join(base, "tac", f"{name}.json")


def resolve(client: TacClient, workspace: str) -> uuid.UUID:
    try:
        return client.workspace_id(workspace)
    except TacError as exc:
        if exc.status == 404:
            raise UsageError(exc.reason) from exc
        raise


def with_client(run: Callable[[TacClient, argparse.Namespace], int]):
    def wrapped(args) -> int:
        client = signed_in(args)
        try:
            return run(client, args)
        finally:
            client.close()

    return wrapped


# --- commands ------------------------------------------------------------------------------------------


@with_client
def cmd_workspaces(client: TacClient, args) -> int:
    items = client.workspaces()
    if not items:
        print("No workspaces.")
        return 0
    for w in items:
        state = w["my_role"] if w["my_state"] == "active" else w["my_state"]
        unread = f"{w['unread']} unread" if w["my_state"] == "active" else ""
        print(f"{w['reference']:15} {w['status']:12} {(w['current_rag'] or '-').upper():6} {state:10} {unread:10} "
              f"lead {clean(w['lead']['name'])} ({clean(w['lead']['agency'])})  {w['id']}")
    return 0


@with_client
def cmd_show(client: TacClient, args) -> int:
    ws = client.workspace(resolve(client, args.workspace))
    if not ws.active:
        print(f"{ws.reference}: you are {ws.detail['my_state']}; the thread opens once the lead's device admits you.")
        return 0
    record = client.record(ws.id)
    print(render_thread(ws, record))
    if record.entries:
        client.mark_read(ws.id, record.entries[-1].seq)
    return 0


@with_client
def cmd_concern(client: TacClient, args) -> int:
    receipt = client.concern(resolve(client, args.workspace), args.category, args.rag, args.detail)
    print(f"Concern posted as #{receipt.seq}.")
    return 0


@with_client
def cmd_action(client: TacClient, args) -> int:
    ws_id = resolve(client, args.workspace)
    try:
        owner = client.member_id(ws_id, args.owner)
    except TacError as exc:
        if exc.status in (400, 404):
            raise UsageError(f"--owner: {exc.reason}") from exc
        raise
    receipt = client.action(ws_id, args.title, args.detail, owner=owner, due=args.due)
    print(f"Action posted as #{receipt.seq}, due {args.due.isoformat()}.")
    return 0


@with_client
def cmd_update(client: TacClient, args) -> int:
    receipt = client.update(resolve(client, args.workspace), args.text)
    print(f"Update posted as #{receipt.seq}.")
    return 0


@with_client
def cmd_accept(client: TacClient, args) -> int:
    client.accept(resolve(client, args.workspace))
    print("Accepted. You can read the thread once the lead's device admits you to the workspace's keys.")
    return 0


@with_client
def cmd_action_status(client: TacClient, args) -> int:
    return change_action(client, args, args.status)


@with_client
def cmd_reassign(client: TacClient, args) -> int:
    return change_action(client, args, "reassigned", owner=args.owner)


def signed_entry(client: TacClient, args, kind: str, what: str):
    """(workspace, entry) for post #args.seq of `kind` as the signed record has it, after the checks every
    change of state makes first: an active member, a record that verifies, a post of that kind that was
    not retracted (whose `what` no longer changes)."""
    ws = client.workspace(resolve(client, args.workspace))
    if not ws.active:
        raise UsageError(f"you are not an active member of {ws.reference} yet")
    record = client.record(ws.id)
    if record.problems:
        raise TrustError("; ".join(record.problems))
    entry = record.by_seq.get(args.seq)
    if entry is None or not entry.ok or entry.kind != kind:
        article = "an" if kind[0] in "aeiou" else "a"
        raise UsageError(f"#{args.seq} is not {article} {kind} in {ws.reference}")
    if entry.retracted_by is not None:
        raise UsageError(f"#{args.seq} was retracted: its {what} no longer changes")
    return ws, entry


def change_action(client: TacClient, args, status: str, *, owner: str | None = None) -> int:
    """Check the change against the action as the signed record has it (the rule the server and every
    reader apply, tacprotocol/actions.py), so a refusal says why before anything is posted; then post it."""
    if status in NOTE_REQUIRED and not args.note.strip():
        raise UsageError(f"--note: {NOTE_REQUIRED[status]}")
    ws, entry = signed_entry(client, args, "action", "status")
    new_owner = None
    if owner is not None:
        try:
            new_owner = client.member_id(ws.id, owner)
        except TacError as exc:
            if exc.status in (400, 404):
                raise UsageError(f"--owner: {exc.reason}") from exc
            raise
    after, why = actions.change(actions.ActionState(entry.status, entry.owner), status=status, author=client.me,
                                lead=ws.lead_id, new_owner=new_owner)
    if after is None:
        raise UsageError(f"#{args.seq}: {why}")
    receipt = client.action_status(ws.id, entry.post_id, status, args.note, owner=new_owner)
    if status == "reassigned":
        print(f"Action #{args.seq} reassigned to {clean(ws.name_of(new_owner))}, who must accept it: posted as "
              f"#{receipt.seq}.")
    else:
        print(f"Action #{args.seq} {status}: posted as #{receipt.seq}.")
    return 0


@with_client
def cmd_rate(client: TacClient, args) -> int:
    """Check the change against the concern as the signed record has it (the rule the server and every
    reader apply, tacprotocol/record.py), so a refusal says why before anything is posted; then post it."""
    if not args.reason.strip():
        raise UsageError(f"--reason: {RATING_REASON_REQUIRED}")
    ws, entry = signed_entry(client, args, "concern", "rating")
    # The change goes in the current epoch, whose lead is the latest manifest's.
    if client.me not in (entry.author, ws.lead_id):
        raise UsageError(f"#{args.seq}: only the author of the concern or the lead professional can change its rating")
    if entry.rag == args.rag:
        raise UsageError(f"#{args.seq} is already {args.rag}")
    try:
        receipt = client.change_rating(ws.id, entry.post_id, args.rag, args.reason)
    except ValueError as exc:  # too long: only a client can see inside the body
        raise UsageError(f"--reason: {exc}") from exc
    print(f"Concern #{args.seq} changed from {entry.rag} to {args.rag}: posted as #{receipt.seq}.")
    return 0


@with_client
def cmd_team(client: TacClient, args) -> int:
    ws = client.workspace(resolve(client, args.workspace))
    if not ws.active:
        print(f"{ws.reference}: you are {ws.detail['my_state']}.")
        return 0
    for pid, listed in ws.keys.members().items():
        card = ws.cards.get(pid, {})
        line = f"{clean(card.get('name', pid)):24} {listed.role:9} safety number {crypto.safety_number(listed.fingerprint)}"
        shown = card.get("fingerprint")
        if shown and shown != b64e(listed.fingerprint):
            trusted = ws.keys.trust(pid, b64d(shown))
            line += (f"\n    new key, confirmed: {crypto.safety_number(b64d(shown))}" if trusted else
                     f"\n    KEY CHANGED ({clean(card.get('key_changed_at') or 'date unknown')}): compare "
                     f"{crypto.safety_number(b64d(shown))} with them, then `tac confirm`")
        print(line)
    for pid, card in ws.cards.items():
        if pid not in ws.keys.members() and card.get("state") in ("invited", "accepted", "active"):
            flag = " — NOT IN THE SIGNED MEMBERSHIP" if card["state"] == "active" else ""
            print(f"{clean(card.get('name', pid)):24} {card['state']}{flag}")
    if frozen(ws.detail):
        print(frozen_sentence(ws.detail["continuity"]))
    elif deputy_wanted(ws, client.me):
        print("You lead a team of three or more with no deputy: name one (`tac deputies`), so the workspace "
              "carries on if you leave.")
    return 0


def deputy_wanted(ws: Workspace, me: uuid.UUID) -> bool:
    """The lead is asked to name a deputy once the signed team reaches three (oversight aside, as the page
    counts it) and someone could be one."""
    team = [m for m in ws.keys.members().values() if m.role != "oversight"]
    return (ws.keys.lead() == me and len(team) >= 3 and not ws.keys.deputies()
            and any(m.role == "member" for m in team))


def frozen(detail: dict) -> bool:
    """The server says the workspace is frozen (it can only say so: who leads comes from signed manifests)."""
    continuity = detail.get("continuity")
    return isinstance(continuity, dict) and continuity.get("state") == "frozen"


def frozen_sentence(continuity: dict) -> str:
    """The server's words (a name, a date) go to a terminal: cleaned like decrypted text."""
    left = f" on {clean(str(continuity['left_at'])[:10])}" if continuity.get("left_at") else ""
    return (f"FROZEN: the lead professional, {clean(continuity.get('lead_name', ''))}, left{left} and named no deputy, "
            f"so nobody can renew the keys and nothing new can be shared. Two of the site's key custodians can "
            f"appoint a new lead from the team: ask your Team Around the Child administrator.")


@with_client
def cmd_confirm(client: TacClient, args) -> int:
    ws_id = resolve(client, args.workspace)
    wraps = client.confirm_key(ws_id, args.member, safety_number=args.safety_number)
    print(f"Key confirmed; {wraps} epoch key{'s' if wraps != 1 else ''} shared with them.")
    return 0


@with_client
def cmd_deputies(client: TacClient, args) -> int:
    ws_id = resolve(client, args.workspace)
    result = client.rotate(ws_id, deputies=args.members)
    for warning in result.warnings:
        print(f"tac: warning: {warning}", file=sys.stderr)
    named = ", ".join(args.members) or "none"
    print(f"Deputies: {named}. Keys renewed: epoch {result.epoch}.")
    return 0


@with_client
def cmd_renew_keys(client: TacClient, args) -> int:
    ws_id = resolve(client, args.workspace)
    why = client.take_over_due(ws_id)
    if why is not None and not args.take_over:
        raise UsageError(f"{clean(why)}. As their deputy you carry the workspace on: check with a colleague if you are "
                         f"unsure, then run again with --take-over to renew the keys naming you lead")
    result = client.rotate(ws_id, new_lead=client.me if why is not None else None)
    for warning in result.warnings:
        print(f"tac: warning: {warning}", file=sys.stderr)
    lead = client.workspace(ws_id).lead_id
    print(f"Keys renewed: epoch {result.epoch}, {len(result.members)} members"
          f"{'; you are the lead' if lead == client.me else ''}.")
    return 0


def cmd_custodian_appoint(args) -> int:
    """No server, no sign-in: the custodians run this on an offline machine."""
    try:
        with open(args.request) as f:
            request = json.load(f)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {args.request}: {exc}") from exc
    lines = sys.stdin.read().splitlines() if sys.stdin else []
    try:
        identity = custodian.identity_from_shares(lines)
        appointment = custodian.appointment_sign(request, identity, args.safety_number)
    except custodian.AppointmentError as exc:
        raise UsageError(f"nothing was signed: {exc}") from exc
    with open(args.out, "w") as f:
        json.dump(appointment, f, indent=2)
        f.write("\n")
    print(f"Signed: {clean(request.get('appointee_name', appointment['appointee']))} to lead "
          f"{clean(request.get('reference', appointment['workspace']))} after key epoch {appointment['epoch']}. "
          f"Give {args.out} to the site administrator: manage.py lead_appointment_install {args.out}")
    return 0


# --- the thread as text --------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text) -> str:
    """Decrypted words are the authors', not ours: no terminal escape sequences or bidi overrides."""
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", str(text))


def when(iso: str) -> str:
    try:
        return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def render_thread(ws: Workspace, record: Record, today: dt.date | None = None) -> str:
    """The thread as the record assembled it: state from signed causal order, refused posts and every
    warning shown, never hidden."""
    today = today or dt.date.today()
    lead = ws.cards.get(ws.lead_id, {})
    rags = {"": 0, "green": 1, "amber": 2, "red": 3}
    verified = max((e.rag for e in record.content() if e.kind == "concern" and e.retracted_by is None),
                   key=rags.get, default="")
    server = ws.detail.get("current_rag", "")
    rag = f"RAG {(verified or 'none').upper()} (from the signed posts)"
    if server != verified:
        rag += f"; the server's summary says {(server or 'none').upper()}"
    lines = [f"{ws.reference} · {ws.detail['status']} · {rag} · lead {clean(lead.get('name', ws.lead_id))}"]
    if frozen(ws.detail):
        lines.append(frozen_sentence(ws.detail["continuity"]))
    for problem in record.problems:
        lines.append(f"STOPPED: {clean(problem)}")
    for warning in record.warnings:
        lines.append(f"WARNING: {clean(warning)}")
    details_seen: dict[str, int] = {}
    for e in record.entries:
        head = f"#{e.seq}"
        if not e.ok:
            lines += ["", f"{head} · REFUSED, not shown as genuine: {clean(e.refused)}"]
            lines += [f"    ! {clean(n)}" for n in e.notes]
            continue
        p, h = e.opened, e.header
        author = f"{clean(ws.name_of(h.author_id))} ({clean(ws.agency_of(h.author_id))})"
        head = f"#{e.seq} {p.signed_time.astimezone().strftime('%Y-%m-%d %H:%M')} · {author} · {h.kind}"
        body = (e.body if e.body is not None else p.body) or {}  # changes keep their own body
        extra: list[str] = []
        text: list[str] = []
        if h.kind == "concern":
            category = str(body.get("category", ""))
            extra = [e.rag.upper(), clean(CONCERN_CATEGORIES.get(category, category))]
            text = [body.get("detail", "")]
            text += [rating_line(ws, change) for change in e.ratings]
        elif h.kind == "action":
            extra = [f"“{clean(body.get('title', ''))}”", f"owner {clean(ws.name_of(e.owner))}",
                     f"due {e.due.isoformat() if e.due else '-'}", "OVERDUE" if e.overdue(today) else e.status]
            text = [body.get("detail", "")]
            text += [status_line(ws, ev) for ev in e.events if ev.kind == "action_status"]
        elif h.kind in ("update", "decision"):
            text = [body.get("text", "")]
        elif h.kind == "details":
            shown = {k: v for k, v in body.items() if k not in ("workspace", "reference")}
            earlier = details_seen.get(json.dumps(shown, sort_keys=True))
            if earlier is not None:
                extra = [f"unchanged since #{earlier}, shared again with key epoch {h.epoch}"]
            else:
                details_seen[json.dumps(shown, sort_keys=True)] = e.seq
                text = [f"{DETAILS_FIELDS.get(k, k)}: {v}" for k, v in shown.items() if v]
        elif h.kind == "history_shared":
            text = [f"Earlier record shared with {ws.name_of(body.get('member'))}: {body.get('reason', '')}"]
        elif h.kind in ("acknowledgement", "action_status", "edit", "retraction", "rating_change"):
            target = record.get(h.target_id)
            change = h.status or (h.rag if h.kind == "rating_change" else "")
            extra = [(f"{change} " if change else "") + f"→ #{target.seq if target else '?'}"]
            if h.kind == "action_status" and h.status == "reassigned":
                extra.append(f"to {clean(ws.name_of(h.owner_id))}")
            text = [body.get("note", "") or body.get("reason", "")] if h.kind != "edit" else []
        edits = [ev for ev in e.events if ev.kind == "edit"]
        if edits:
            extra.append(f"edited in #{edits[-1].seq}")
        if e.retracted_by is not None:
            extra.append(f"RETRACTED: {clean(e.retracted_by.opened.body.get('reason', '')) or 'no reason given'}")
        if p.key_trust == "confirmed":
            extra.append(f"new key, confirmed by {clean(ws.name_of(p.confirmed_by))}")
        lines += ["", " · ".join([head] + [x for x in extra if x])]
        lines += [f"    {line}" for t in text if t for line in clean(t).splitlines()]
        if e.acks:
            lines.append(f"    Acknowledged by {', '.join(clean(ws.name_of(a)) for a in e.acks)}")
        lines += [f"    ! {clean(n)}" for n in e.notes]
    return "\n".join(lines)


def status_line(ws: Workspace, event) -> str:
    """An applied change of an action's status: "Done by Dr Priya GP: Visited", "Reassigned to X by Y"."""
    h = event.header
    words = STATUS_WORDS.get(h.status, h.status.capitalize())
    if h.status == "reassigned":
        words += f" to {ws.name_of(h.owner_id)}"
    note = str(event.opened.body.get("note", "") or "")
    return f"{words} by {ws.name_of(h.author_id)}" + (f": {note}" if note else "")


def rating_line(ws: Workspace, change) -> str:
    """An applied change of a concern's rating (record.RatingChange): "Rating changed from amber to red by
    Sam Lead, 2026-03-02 14:05: Missed the second appointment"."""
    at = change.signed_time.astimezone().strftime("%Y-%m-%d %H:%M")
    return (f"Rating changed from {change.old} to {change.new} by {ws.name_of(change.by)}, {at}: "
            f"{change.reason or 'no reason given'}")


if __name__ == "__main__":
    sys.exit(main())
