"""No email carries content. tests/conftest.py scans every email the whole suite sends (email_content.py
says what is forbidden, and why the account emails may name their reader); here, that the scan finds
what it looks for, and a notification email about a red concern checked directly."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.mail import get_connection, send_mail
from django.utils import timezone

from accounts.services import invitation_create
from notifications import services
from notifications.models import Notification
from oversight.services import clocks_run
from tests.notifications import email_content
from tests.notifications.email_content import Forbidden, Sent, from_django, from_spool, problems

pytestmark = pytest.mark.django_db

CHILD = {"name": "Robin Example", "dob": "2019-04-02", "nhs_number": "9434765919",
         "address": "14 Larch Avenue, Northshire NS5 1QQ", "family": "Lives with gran, Mrs June Example"}
DETAIL = "Bruising to both upper arms, explained as a fall from a scooter."


def notification_email(body: str) -> Sent:
    return Sent(subject=services.EMAIL_SUBJECT, body=body, to=("gp@gp.example",))


@pytest.mark.parametrize(("body", "found"), [
    ("About TAC-2026-0042.", "a workspace reference 'TAC-2026-0042'"),
    ("A Red concern.", "a rating word 'Red'"),
    ("Rated amber", "a rating word 'amber'"),
    ("green", "a rating word 'green'"),
    (f"Re: {CHILD['name']}", "sealed plaintext 'Robin Example'"),
    (f"... {DETAIL[:40]} ...", None),  # part of a text is not the text
    (f"... {DETAIL} ...", f"sealed plaintext {DETAIL!r}"),
    ("From Dr Priya GP.", "a name 'Dr Priya GP'"),
    ("Riverside Medical Practice asks", "a name 'Riverside Medical Practice'"),
])
def test_it_finds_what_a_notification_email_must_not_carry(body, found):
    forbidden = Forbidden(texts={CHILD["name"], DETAIL}, names={"Dr Priya GP", "Riverside Medical Practice"})
    result = problems([notification_email(body)], forbidden)
    if found is None:
        assert result == []
    else:
        assert len(result) == 1 and result[0].endswith(found), result


def test_it_lets_an_account_email_greet_its_reader_but_nothing_of_a_workspace():
    forbidden = Forbidden(texts={CHILD["name"]}, names={"Dr Priya GP"})
    greeting = Sent(subject="You are invited to Team Around the Child", body="Hello Dr Priya GP,")
    assert problems([greeting], forbidden) == []
    leaking = Sent(subject="You are invited to Team Around the Child", body="Hello Dr Priya GP, about TAC-2026-0001")
    assert [p.split(": ", 1)[1] for p in problems([leaking], forbidden)] == ["a workspace reference 'TAC-2026-0001'"]


def test_it_matches_names_as_words():
    forbidden = Forbidden(names={"Sam"})
    assert problems([notification_email("Sample text")], forbidden) == []
    assert problems([notification_email("Sam said")], forbidden) != []


def test_it_knows_the_demo_seeds_children_and_people():
    demo = email_content.demo_forbidden()
    assert {"Leo Marsh", "9434765919", "12 Willow Court, Northshire NS1 4AB"} <= demo.texts
    assert any("missed his 2-year review" in text for text in demo.texts)
    assert {"Sam Okafor", "Dr Priya Shah", "Riverside Medical Practice"} <= demo.names


def test_it_records_what_the_run_seals_and_who_it_makes(_email_scan, team, make_persona):
    team.gp.post(team.workspace, "update", {"text": "Seen at the surgery with gran on Tuesday."})
    assert "Seen at the surgery with gran on Tuesday." in _email_scan.forbidden.texts
    assert {"Robin Example", str(team.workspace.public_id), team.workspace.reference} <= _email_scan.forbidden.texts
    make_persona("hv@gp.example", "gp", full_name="Hana Visitor")
    assert "Hana Visitor" in _email_scan.forbidden.names


def test_it_reads_the_emails_a_test_server_writes(tmp_path, settings):
    """The forked daphne of the browser tests writes its emails with Django's file backend (conftest's
    _application); the scan reads them back, subject and body, whatever their encoding."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    with get_connection() as connection:
        send_mail("First", "Plain body TAC-2026-0007", None, ["a@example.com"], connection=connection)
        send_mail("Zweite Grüße", "Grüße an Zoë " + "x" * 1200, None, ["b@example.com"], connection=connection)
    read = from_spool(tmp_path)
    assert [(s.subject, s.to) for s in read] == [("First", ("a@example.com",)), ("Zweite Grüße", ("b@example.com",))]
    assert read[0].body.strip() == "Plain body TAC-2026-0007"
    assert read[1].body.startswith("Grüße an Zoë")
    assert problems(read, Forbidden()) != []


def test_it_reads_every_text_part_of_an_outbox_email():
    from django.core.mail import EmailMultiAlternatives

    message = EmailMultiAlternatives("Subject", "plain", to=["a@example.com"])
    message.attach_alternative("<p>html TAC-2026-0009</p>", "text/html")
    assert problems([from_django(message)], Forbidden()) == [
        "email 'Subject' to a@example.com (): a workspace reference 'TAC-2026-0009'"]


def test_it_sends_about_a_red_concern_an_email_that_says_nothing_of_it(team, gp, lead, manager, custodian):
    """The GP raises a red concern in Sam's workspace; Sam does not answer it within 4 hours; Sam and
    Sam's manager are emailed. Neither email names the child, the workspace, the rating, the concern or
    anybody."""
    team.lead.post(team.workspace, "details", {**CHILD, "workspace": str(team.workspace.public_id),
                                               "reference": team.workspace.reference})
    concern = team.gp.post(team.workspace, "concern", {"category": "physical_abuse", "detail": DETAIL}, rag="red").post
    assert concern.rag == "red"
    clocks_run(now=timezone.now() + dt.timedelta(hours=4, minutes=1))
    breached = Notification.objects.filter(kind=Notification.Kind.CONCERN_BREACHED).order_by("recipient_id")
    assert [n.recipient_id for n in breached] == sorted([lead.user.pk, manager.user.pk])
    for notification in breached:
        assert services.notification_email_send(notification_id=notification.pk) == "sent"

    assert sorted(m.to[0] for m in mail.outbox) == sorted([lead.user.email, manager.user.email])
    forbidden = Forbidden(texts={*CHILD.values(), DETAIL, str(team.workspace.public_id), str(concern.post_id)},
                          names={lead.user.full_name, gp.user.full_name, manager.user.full_name,
                                 lead.user.agency.name, gp.user.agency.name})
    for message in mail.outbox:
        text = f"{message.subject}\n{message.body}"
        assert team.workspace.reference not in text
        assert "red" not in text.lower().split() and "Red" not in text
        assert CHILD["name"] not in text and DETAIL not in text
        assert "http://127.0.0.1:8000/notifications\n" in message.body
        assert message.subject == services.EMAIL_SUBJECT
    assert problems([from_django(m) for m in mail.outbox], forbidden) == []


def test_it_sends_an_invitation_to_the_service_that_names_only_whom_it_is_for_and_who_asked(
        lead, django_capture_on_commit_callbacks):
    """An account email, to one person about their own account: it may greet them and say who invited
    them (they need to know it is genuine), so the scan allows names there, and nothing else."""
    with django_capture_on_commit_callbacks(execute=True):
        invitation_create(admin=lead.user, email="new@csc.example", full_name="Nia Newcomer",
                          job_title="Social worker", role="practitioner", is_agency_admin=False,
                          accept_url_for=lambda token: f"http://127.0.0.1:8000/accounts/invitations/{token}/")
    (message,) = mail.outbox
    assert "Nia Newcomer" in message.body and lead.user.full_name in message.body
    assert problems([from_django(message)], Forbidden(names={"Nia Newcomer", lead.user.full_name})) == []
