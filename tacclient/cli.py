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
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import re
import sys
import uuid
from collections.abc import Callable

from .client import (
    CONCERN_CATEGORIES,
    DETAILS_FIELDS,
    RAGS,
    TacClient,
    TacError,
    TacNetworkError,
    ThreadPost,
    TrustError,
    Workspace,
)

WORKSPACE_HELP = "a workspace reference (TAC-2026-0001) or id"


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
        client = TacClient(args.url, custodian_key_id=args.custodian_key_id)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    client.sign_in(email, password, code)
    return client


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
    thread = client.read(ws.id, strict=False)
    print(render_thread(ws, thread))
    if thread:
        client.mark_read(ws.id, thread[-1].seq)
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


def render_thread(ws: Workspace, thread: list[ThreadPost], today: dt.date | None = None) -> str:
    today = today or dt.date.today()
    by_id = {p.post_id: p for p in thread if p.ok}
    acks: dict[uuid.UUID, list[str]] = {}
    status: dict[uuid.UUID, tuple[str, str]] = {}
    edited: dict[uuid.UUID, ThreadPost] = {}
    retracted: dict[uuid.UUID, str] = {}
    for p in thread:
        if p.ok and p.kind == "acknowledgement" and p.target:
            acks.setdefault(p.target, []).append(ws.name_of(p.author))
        if p.ok and p.kind == "action_status" and p.target in by_id and by_id[p.target].kind == "action":
            status[p.target] = (p.status, str(p.body.get("note", "")))
        # Only the author may edit or retract (the server checks; so does this reader).
        if p.ok and p.kind in ("edit", "retraction") and p.target in by_id and by_id[p.target].author == p.author:
            if p.kind == "edit":
                edited[p.target] = p
            else:
                retracted[p.target] = str(p.body.get("reason", ""))
    details_seen: dict[str, int] = {}
    lead = ws.cards.get(ws.lead_id, {})
    lines = [f"{ws.reference} · {ws.detail['status']} · RAG {(ws.detail['current_rag'] or 'none').upper()} · "
             f"lead {clean(lead.get('name', ws.lead_id))}"]
    for p in thread:
        author = f"{clean(ws.name_of(p.author))} ({clean(ws.agency_of(p.author))})"
        head = f"#{p.seq} {when(p.created_at)} · {author} · {p.kind}"
        if not p.ok:
            lines += ["", f"{head} · NOT VERIFIED, not shown: {clean(p.error)}"]
            continue
        body = edited[p.post_id].body if p.post_id in edited else p.body
        extra: list[str] = []
        text: list[str] = []
        if p.kind == "concern":
            category = str(body.get("category", ""))
            extra = [p.rag.upper(), clean(CONCERN_CATEGORIES.get(category, category))]
            text = [body.get("detail", "")]
        elif p.kind == "action":
            state, note = status.get(p.post_id, ("open", ""))
            overdue = state == "open" and p.due is not None and p.due < today
            extra = [f"“{clean(body.get('title', ''))}”", f"owner {clean(ws.name_of(p.owner))}",
                     f"due {p.due.isoformat() if p.due else '-'}", "OVERDUE" if overdue else state]
            text = [body.get("detail", "")] + ([f"Completion note: {note}"] if note else [])
        elif p.kind in ("update", "decision"):
            text = [body.get("text", "")]
        elif p.kind == "details":
            earlier = details_seen.get(json.dumps(body, sort_keys=True))
            if earlier is not None:
                extra = [f"unchanged since #{earlier}, shared again with key epoch {p.epoch}"]
            else:
                details_seen[json.dumps(body, sort_keys=True)] = p.seq
                text = [f"{DETAILS_FIELDS.get(k, k)}: {v}" for k, v in body.items() if v]
        elif p.kind in ("acknowledgement", "action_status", "edit", "retraction"):
            target = by_id.get(p.target)
            extra = [(f"{p.status} " if p.status else "") + f"→ #{target.seq if target else '?'}"]
            text = [body.get("note", "") or body.get("reason", "")] if p.kind != "edit" else []
        else:
            text = [str(body)]
        if p.post_id in edited:
            extra.append(f"edited in #{edited[p.post_id].seq}")
        if p.post_id in retracted:
            extra.append(f"RETRACTED: {clean(retracted[p.post_id]) or 'no reason given'}")
        if not p.key_matches_manifest:
            extra.append("AUTHOR'S KEY CHANGED: compare safety numbers")
        lines += ["", " · ".join([head] + [e for e in extra if e])]
        lines += [f"    {line}" for t in text if t for line in clean(t).splitlines()]
        if p.post_id in acks:
            lines.append(f"    Acknowledged by {', '.join(clean(n) for n in acks[p.post_id])}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
