"""The audit trail is a hash chain: services append to it, `manage.py audit_verify` walks it and names the
first row that was altered or removed. Rows never hold secrets."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import Invitation
from audit.models import ACCOUNTS, GENESIS_HASH, AuditChain, AuditEvent
from audit.services import audit_record
from tests.accounts.payloads import make_enrolment
from tests.accounts.test_passwords import password_change_payload
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def accounts_rows():
    return AuditEvent.objects.filter(chain__name=ACCOUNTS).order_by("seq")


def verify() -> str:
    out = StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def verify_fails() -> str:
    with pytest.raises(CommandError) as excinfo:
        verify()
    return str(excinfo.value)


@pytest.fixture
def trail(client, lead, manager):
    """A few real events: agencies and accounts created, sign-ins, a failure, an offboarding."""
    sign_in(client, lead)
    Client().post(reverse("accounts:login"), {"email": manager.user.email, "auth_key": "ab" * 32})
    services.professional_offboard(admin=lead.user, professional=manager.user)
    events = list(accounts_rows())
    assert len(events) >= 9
    return events


# --- the chain ------------------------------------------------------------------------------------------


def test_it_links_every_event_to_the_one_before(trail):
    assert [e.seq for e in trail] == list(range(1, len(trail) + 1))
    assert trail[0].prev_hash == GENESIS_HASH
    for before, after in zip(trail, trail[1:], strict=False):
        assert after.prev_hash == before.hash
    for event in trail:
        assert event.hash == event.compute_hash()
        assert re.fullmatch(r"[0-9a-f]{64}", event.hash)
    head = AuditChain.objects.get(name=ACCOUNTS)
    assert (head.seq, head.hash) == (trail[-1].seq, trail[-1].hash)
    assert [e.kind for e in trail[:3]] == ["agency.created"] * 3
    assert {"account.created", "auth.sign_in", "2fa.verified", "auth.sign_in_failed", "account.offboarded"} <= {
        e.kind for e in trail
    }


def test_it_records_who_did_what_to_whom_from_where(trail, lead, manager):
    [event] = [e for e in trail if e.kind == "account.offboarded"]
    assert event.actor_id == lead.user.pk
    assert event.actor_label == lead.user.email
    assert (event.target_type, event.target_id) == ("accounts.professional", str(manager.user.pk))
    [sign_in_event] = [e for e in trail if e.kind == "auth.sign_in"]
    assert sign_in_event.ip == "127.0.0.1"


def test_it_rolls_the_event_back_with_the_change(lead, manager):
    before = accounts_rows().count()
    with pytest.raises(RuntimeError, match="boom"):
        with transaction.atomic():
            audit_record(kind="test.rolled_back", actor=lead.user)
            raise RuntimeError("boom")
    assert accounts_rows().count() == before
    assert AuditChain.objects.get(name=ACCOUNTS).seq == before
    verify()


def test_it_verifies_an_intact_chain(trail):
    assert verify().strip() == f"audit chains intact: {len(trail)} rows in 1 chain, 0 anchored heads checked"


def test_it_verifies_an_empty_chain(db):
    assert verify().strip() == "audit chains intact: 0 rows in 1 chain, 0 anchored heads checked"


# --- tampering --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"data": {"kind": "childrens_social_care", "note": "edited"}},
        {"kind": "agency.deleted"},
        {"actor_id": 999},
        {"actor_label": "someone.else@csc.example"},
        {"ip": "192.0.2.1"},
        {"target_id": "999"},
    ],
)
def test_it_detects_an_altered_row(trail, change):
    victim = trail[1]
    AuditEvent.objects.filter(pk=victim.pk).update(**change)
    message = verify_fails()
    assert f"row {victim.seq}" in message
    assert "altered" in message


def test_it_detects_a_row_whose_time_was_moved(trail):
    victim = trail[4]
    AuditEvent.objects.filter(pk=victim.pk).update(occurred_at=victim.occurred_at - timedelta(days=1))
    assert f"row {victim.seq} was altered" in verify_fails()


def test_it_detects_an_altered_row_whose_hash_was_recomputed(trail):
    victim = accounts_rows().get(seq=3)
    victim.data = {"kind": "police"}
    victim.hash = victim.compute_hash()
    AuditEvent.objects.filter(pk=victim.pk).update(data=victim.data, hash=victim.hash)
    message = verify_fails()
    assert "row 4 does not link to row 3" in message


def test_it_detects_a_deleted_middle_row(trail):
    middle = trail[len(trail) // 2]
    AuditEvent.objects.filter(pk=middle.pk).delete()
    message = verify_fails()
    assert f"row {middle.seq} is missing" in message
    assert message.startswith(f"audit chain accounts broken at row {middle.seq}:")


def test_it_detects_a_deleted_first_row(trail):
    accounts_rows().filter(seq=1).delete()
    assert "row 1 is missing" in verify_fails()


def test_it_detects_a_deleted_last_row(trail):
    last = trail[-1]
    AuditEvent.objects.filter(pk=last.pk).delete()
    message = verify_fails()
    assert f"row {last.seq}" in message
    assert f"the head records {last.seq}" in message


def test_it_detects_rows_renumbered_to_hide_a_deletion(trail):
    """Deleting row k and shifting the later rows down leaves no gap, but the links and hashes break."""
    k = 5
    accounts_rows().filter(seq=k).delete()
    for event in accounts_rows().filter(seq__gt=k):
        AuditEvent.objects.filter(pk=event.pk).update(seq=event.seq - 1)
    assert f"row {k} does not link to row {k - 1}" in verify_fails()


def test_it_detects_a_truncated_trail_whose_head_count_was_rewound(trail):
    """The head keeps the last hash as well as the count: rewinding the count alone does not hide it."""
    accounts_rows().filter(seq=len(trail)).delete()
    AuditChain.objects.filter(name=ACCOUNTS).update(seq=len(trail) - 1)
    assert f"row {len(trail)}" in verify_fails()


def test_it_keeps_appending_to_the_chain_after_verification(trail, lead):
    verify()
    event = audit_record(kind="test.appended", actor=lead.user)
    assert event.seq == len(trail) + 1
    assert event.prev_hash == trail[-1].hash
    verify()


# --- no secrets -------------------------------------------------------------------------------------------


def test_it_keeps_keys_passwords_and_tokens_out_of_the_trail(client, lead, manager, django_capture_on_commit_callbacks):
    """Run the flows that handle secrets, then look for every one of them in the whole trail."""
    secrets: list[str] = [lead.password, lead.auth_key(), manager.auth_key()]

    def remember_account(user) -> None:
        user.refresh_from_db()
        key = user.current_identity_key()
        for raw in (bytes(user.kdf_salt), bytes(key.wrapped_secret)):
            secrets.extend([raw.hex(), base64.b64encode(raw).decode()])
        secrets.append(user.password)  # Django's hash of the auth key

    # Sign-ins, right and wrong (the wrong key is a guess at someone's real key).
    sign_in(client, lead)
    wrong = lead.auth_key("a wrong guess")
    secrets.append(wrong)
    Client().post(reverse("accounts:login"), {"email": lead.user.email, "auth_key": wrong})
    Client().post(reverse("accounts:login"), {"email": lead.user.email, "auth_key": lead.password})

    # Backup codes, one of them used.
    codes = services.backup_codes_regenerate(request=None, professional=manager.user)
    secrets.extend(codes)
    other = sign_in(Client(), manager, verify=False)
    other.post(reverse("accounts:two_factor"), {"token": codes[0]})

    # A password change.
    remember_account(lead.user)
    payload = password_change_payload(lead, "a brand new passphrase for tac")
    secrets.extend([payload["auth_key"], payload["current_auth_key"], payload["wrapped_secret"], payload["salt"]])
    response = client.post(reverse("accounts:password_change"), json.dumps(payload), content_type="application/json")
    assert response.status_code == 200
    remember_account(lead.user)

    # An invitation, accepted.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:agency_invite"), {
            "full_name": "Helen Visitor", "email": "helen@csc.example", "job_title": "Health visitor",
            "role": "practitioner",
        })
    link = re.search(r"/accounts/invitations/\S+/", mail.outbox[-1].body).group(0)
    secrets.append(link.rstrip("/").rsplit("/", 1)[1])
    invitation = Invitation.objects.get()
    enrolment, _ = make_enrolment(invitation.public_id, "helen's own password")
    secrets.extend(v for k, v in enrolment.items() if isinstance(v, str))
    assert Client().post(link, json.dumps(enrolment), content_type="application/json").status_code == 200

    # A password reset.
    Client().post(reverse("accounts:password_reset"), {"email": manager.user.email})
    reset = re.search(r"/accounts/password-reset/\S+/\S+/", mail.outbox[-1].body).group(0)
    secrets.append(reset.rstrip("/").rsplit("/", 1)[1])
    enrolment, _ = make_enrolment(manager.user.public_id, "manager's new password")
    secrets.extend(v for k, v in enrolment.items() if isinstance(v, str))
    enrolment["otp_token"] = codes[1]  # a backup code (in `secrets` already): the reset uses it up
    assert Client().post(reset, json.dumps(enrolment), content_type="application/json").status_code == 200
    remember_account(manager.user)

    rows = list(AuditEvent.objects.values())
    kinds = {row["kind"] for row in rows}
    assert {
        "auth.sign_in", "auth.sign_in_failed", "2fa.backup_code_used", "auth.password_changed",
        "invitation.created", "invitation.accepted", "account.created", "auth.password_reset",
    } <= kinds
    dump = json.dumps(rows, default=str).lower()
    for secret in secrets:
        assert secret.lower() not in dump, secret
    verify()
