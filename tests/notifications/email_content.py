"""What no email may carry, and the scan that tests/conftest.py runs over every email the suite sends
(issue 10: "an email says only that there is something new for them in Team Around the Child").

Forbidden in every email: a workspace reference (TAC-2026-0001), a rating word, and any plaintext that was
sealed into a post during the run or that the demo seed seals (a child's name, date of birth, NHS number,
address, family; a concern's detail, an action's title, a note; workspace and professional ids inside
bodies). Forbidden in the emails the notifications app sends, also: the name of any professional or
agency. The account emails (accounts/services.py: an invitation to the service, a password reset, a
changed email address) go to one person about their own account and legitimately greet them by name, and
an invitation names who invited them and their agency (the invitee needs to know the invitation is
genuine); none of them is about a workspace or a child."""

from __future__ import annotations

import email
import email.header
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

REFERENCE = re.compile(r"TAC-\d{4}-\d{4}")
RATING = re.compile(r"\b(red|amber|green)\b", re.IGNORECASE)
# Shorter strings (a category like "other", an empty note) are words any email may use.
MIN_TEXT = 6


@dataclass(frozen=True)
class Sent:
    """One email, as the scan reads it."""
    subject: str
    body: str
    to: tuple[str, ...] = ()
    where: str = ""  # the test that sent it

    @property
    def from_notifications(self) -> bool:
        from notifications.services import EMAIL_SUBJECT

        return self.subject == EMAIL_SUBJECT


@dataclass
class Forbidden:
    texts: set[str] = field(default_factory=set)  # sealed plaintext: in no email
    names: set[str] = field(default_factory=set)  # professionals and agencies: in no notification email

    def add_plaintext(self, plaintext: bytes) -> None:
        try:
            body = json.loads(plaintext)
        except ValueError:
            body = plaintext.decode("utf-8", "replace")
        self.texts.update(strings_of(body))

    def add_name(self, name: str) -> None:
        if len(name.strip()) >= 3:
            self.names.add(name.strip())


def strings_of(value) -> set[str]:
    """Every string in a post body long enough to mean something, however deeply nested."""
    if isinstance(value, str):
        return {value} if len(value.strip()) >= MIN_TEXT else set()
    if isinstance(value, dict):
        return set().union(*(strings_of(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(strings_of(v) for v in value)) if value else set()
    return set()


def demo_forbidden() -> Forbidden:
    """The demo seed's plaintext and names (demo/management/commands/seed_demo.py), read by playing
    each workspace's story into a recorder instead of the services."""
    from demo.management.commands import seed_demo

    found = Forbidden()

    class Recorder(seed_demo.Story):
        """The seed's Story, whose every post is recorded instead of sealed, at no moment in particular."""

        def __init__(self):
            pass

        def at(self, days_ago: int, clock: str) -> None:
            pass

        def close(self) -> None:
            pass

        def post(self, author: str, kind: str, body: dict, **fields):
            found.texts.update(strings_of(body))
            return SimpleNamespace(post_id=uuid.uuid4())

    for spec in seed_demo.DEMO_WORKSPACES:
        found.texts.update(strings_of(spec["details"]))
        spec["story"](Recorder())
    for person in seed_demo.PEOPLE:
        found.add_name(person[1])
    for agency in seed_demo.AGENCIES:
        found.add_name(agency[0])
    return found


def problems(sent: Iterable[Sent], forbidden: Forbidden) -> list[str]:
    """One line per forbidden thing found in an email."""
    found = []
    for message in sent:
        text = f"{message.subject}\n{message.body}"
        label = f"email {message.subject!r} to {', '.join(message.to)} ({message.where})"
        if m := REFERENCE.search(text):
            found.append(f"{label}: a workspace reference {m.group()!r}")
        if m := RATING.search(text):
            found.append(f"{label}: a rating word {m.group()!r}")
        found += [f"{label}: sealed plaintext {t!r}" for t in sorted(forbidden.texts) if t in text]
        if message.from_notifications:
            found += [f"{label}: a name {n!r}" for n in sorted(forbidden.names)
                      if re.search(rf"\b{re.escape(n)}\b", text)]
    return found


def from_django(message, where: str = "") -> Sent:
    """A django.core.mail message from the outbox: its subject and every text part (an HTML alternative
    too)."""
    parts = [message.body] + [content for content, _mime in getattr(message, "alternatives", [])]
    return Sent(subject=str(message.subject), body="\n".join(str(p) for p in parts), to=tuple(message.to),
                where=where)


# Django's file-based backend (what the forked daphne of the browser tests uses) ends each message so.
SPOOL_SEPARATOR = "-" * 79


def from_spool(directory: Path) -> list[Sent]:
    """The emails a forked test server wrote to `directory`."""
    sent = []
    for path in sorted(directory.glob("*.log")):
        for raw in path.read_bytes().split(f"\n{SPOOL_SEPARATOR}\n".encode()):
            if not raw.strip():
                continue
            parsed = email.message_from_bytes(raw)
            texts = []
            for part in parsed.walk():
                if part.get_content_maintype() == "text":
                    payload = part.get_payload(decode=True) or b""
                    texts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
            subject = str(email.header.make_header(email.header.decode_header(parsed.get("Subject", ""))))
            sent.append(Sent(subject=subject, body="\n".join(texts), to=(parsed.get("To", ""),),
                             where=f"a test server ({path.name})"))
    return sent
