"""Invitations to the service: an agency admin invites by email, the invitee's browser makes its keys and
posts them to the one-time link, which creates the account."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, Professional
from accounts.services import invitation_create, invitation_revoke
from audit.models import AuditEvent
from tacprotocol import crypto
from tests.accounts.payloads import make_enrolment
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

INVITEE_PASSWORD = "purple otter keyboard sunrise"
INVITEE = {
    "full_name": "Helen Visitor",
    "email": "Helen.Visitor@csc.example",
    "job_title": "Health visitor",
    "role": "practitioner",
}


def kinds(kind: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=kind))


def invite(client, **fields):
    return client.post(reverse("accounts:agency_invite"), {**INVITEE, **fields})


def link_from_email(message) -> str:
    return re.search(r"https?://\S+/accounts/invitations/\S+/", message.body).group(0)


def accept(client, link: str, payload) -> object:
    return client.post(link, json.dumps(payload), content_type="application/json")


@pytest.fixture
def invited(client, lead, django_capture_on_commit_callbacks):
    """The lead invited Helen; returns (invitation, path of the link in the email)."""
    sign_in(client, lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(client)
    assert response.status_code == 302, response.content[:500]
    [message] = mail.outbox
    link = link_from_email(message)
    path = link.split("testserver", 1)[1]
    return Invitation.objects.get(), path


# --- the admin invites ----------------------------------------------------------------------------------


def test_it_emails_an_invitation_with_a_one_time_link(client, lead, invited):
    invitation, path = invited
    [message] = mail.outbox
    assert message.to == ["helen.visitor@csc.example"]
    assert "invited" in message.subject
    assert "Sam Lead" in message.body and "Helen Visitor" in message.body
    assert "72 hours" in message.body
    assert path.startswith("/accounts/invitations/")
    token = path.rstrip("/").rsplit("/", 1)[1]
    # Stored only as a hash.
    assert token not in invitation.token_hash
    assert invitation.token_hash == crypto.sha256(token.encode()).hex()
    assert invitation.agency == lead.user.agency
    assert invitation.invited_by == lead.user
    assert invitation.email == "helen.visitor@csc.example"
    assert invitation.state == "pending"
    assert timedelta(hours=71) < invitation.expires_at - timezone.now() <= settings.TAC_INVITATION_TTL
    [event] = kinds("invitation.created")
    assert event.actor_id == lead.user.pk
    assert event.target_id == str(invitation.pk)
    assert token not in json.dumps(event.data)
    # The agency page lists it as pending.
    assert "helen.visitor@csc.example" in client.get(reverse("accounts:agency")).content.decode()


def test_it_sends_no_email_when_the_invitation_is_not_saved(client, lead, manager, django_capture_on_commit_callbacks):
    sign_in(client, lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(client, email=manager.user.email)
    assert response.status_code == 400
    assert b"An account with this email address already exists" in response.content
    assert mail.outbox == []
    assert not Invitation.objects.exists()


def test_it_explains_what_is_missing_from_the_invitation_form(client, lead):
    sign_in(client, lead)
    response = invite(client, full_name="", email="not-an-email", job_title="")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter their full name" in html
    assert "Enter their job title" in html
    assert "Enter a valid email address" in html
    assert not Invitation.objects.exists()


def test_an_agency_admin_cannot_give_the_partnership_role(client, lead):
    sign_in(client, lead)
    response = invite(client, role="partnership")
    assert response.status_code == 400
    assert not Invitation.objects.exists()
    with pytest.raises(ValidationError, match="Choose practitioner or manager"):
        invitation_create(admin=lead.user, email="p@csc.example", full_name="P", job_title="Lead", role="partnership",
                          is_agency_admin=False, accept_url_for=lambda token: f"/accept/{token}")
    assert not Invitation.objects.exists()


def test_it_refuses_an_invitation_for_an_existing_account_in_another_case(client, lead, gp):
    sign_in(client, lead)
    response = invite(client, email="GP@GP.example")
    assert response.status_code == 400
    assert b"An account with this email address already exists" in response.content


def test_it_replaces_an_earlier_pending_invitation_for_the_same_address(client, lead, invited, django_capture_on_commit_callbacks):
    first, first_path = invited
    with django_capture_on_commit_callbacks(execute=True):
        assert invite(client).status_code == 302
    first.refresh_from_db()
    assert first.state == "revoked"
    assert Client().get(first_path).status_code == 410
    assert Client().get(link_from_email(mail.outbox[1]).split("testserver", 1)[1]).status_code == 200


# --- the invitee accepts --------------------------------------------------------------------------------


def test_it_shows_the_invitation_page_to_the_invitee(invited):
    invitation, path = invited
    response = Client().get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Welcome, Helen Visitor" in html
    assert f'data-user-id="{invitation.public_id}"' in html
    assert f'data-opslimit="{settings.TAC_KDF_OPSLIMIT}"' in html
    assert f'data-memlimit="{settings.TAC_KDF_MEMLIMIT}"' in html


def test_it_creates_the_account_from_the_browsers_keys(invited, lead):
    invitation, path = invited
    payload, identity = make_enrolment(invitation.public_id, INVITEE_PASSWORD)
    invitee = Client()
    response = accept(invitee, path, payload)
    assert response.status_code == 200, response.content
    assert response.json() == {"redirect": reverse("accounts:two_factor_enrol")}

    professional = Professional.objects.get(email="helen.visitor@csc.example")
    assert professional.public_id == invitation.public_id
    assert professional.agency == lead.user.agency
    assert (professional.full_name, professional.job_title, professional.role) == (
        "Helen Visitor", "Health visitor", "practitioner"
    )
    assert not professional.is_agency_admin and not professional.is_staff
    key = professional.current_identity_key()
    assert key.version == 1
    assert bytes(key.sign_public) == identity.sign_public
    assert bytes(key.box_public) == identity.box_public
    # The password is not the Django password; the derived auth key is.
    keys = crypto.derive_keys(INVITEE_PASSWORD, bytes(professional.kdf_salt), professional.kdf_opslimit,
                              professional.kdf_memlimit)
    assert professional.check_password(keys.auth_password)
    assert not professional.check_password(INVITEE_PASSWORD)
    # The sealed private keys open with the wrap key that never left the "browser".
    ad = crypto.identity_wrap_ad(professional.public_id, bytes(professional.kdf_salt),
                                 professional.kdf_opslimit, professional.kdf_memlimit)
    assert crypto.identity_unwrap(bytes(key.wrapped_secret), keys.wrap_key, ad) == identity

    invitation.refresh_from_db()
    assert invitation.state == "accepted"
    assert invitation.accepted_by == professional

    # Signed in with the password only: next stop, setting up 2FA.
    assert invitee.session["_auth_user_id"] == str(professional.pk)
    response = invitee.get(reverse("frontend:home"))
    assert response["Location"].startswith(reverse("accounts:two_factor"))
    assert invitee.get(reverse("accounts:two_factor_enrol")).status_code == 200

    created = kinds("account.created")[-1]
    assert created.target_id == str(professional.pk)
    [accepted] = kinds("invitation.accepted")
    assert (accepted.actor_id, accepted.target_id) == (professional.pk, str(invitation.pk))
    assert kinds("auth.sign_in")[-1].actor_id == professional.pk


def test_it_creates_an_agency_admin_when_asked(client, lead, django_capture_on_commit_callbacks):
    sign_in(client, lead)
    with django_capture_on_commit_callbacks(execute=True):
        invite(client, is_agency_admin="on", role="manager")
    invitation = Invitation.objects.get()
    path = link_from_email(mail.outbox[0]).split("testserver", 1)[1]
    assert accept(Client(), path, make_enrolment(invitation.public_id, INVITEE_PASSWORD)[0]).status_code == 200
    professional = Professional.objects.get(email="helen.visitor@csc.example")
    assert professional.is_agency_admin and professional.role == "manager"


def test_it_accepts_a_link_only_once(invited):
    invitation, path = invited
    assert accept(Client(), path, make_enrolment(invitation.public_id, INVITEE_PASSWORD)[0]).status_code == 200
    response = accept(Client(), path, make_enrolment(invitation.public_id, "someone else's password")[0])
    assert response.status_code == 410
    assert response.json() == {"error": "invalid", "reason": "This invitation has already been used"}
    response = Client().get(path)
    assert response.status_code == 410
    assert b"This invitation has already been used" in response.content
    assert Professional.objects.filter(email="helen.visitor@csc.example").count() == 1
    assert len(kinds("invitation.accepted")) == 1


def test_it_refuses_an_expired_link(invited):
    invitation, path = invited
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().get(path)
    assert response.status_code == 410
    assert b"This invitation has expired" in response.content
    response = accept(Client(), path, make_enrolment(invitation.public_id, INVITEE_PASSWORD)[0])
    assert response.status_code == 410
    assert response.json()["reason"] == "This invitation has expired"
    assert not Professional.objects.filter(email="helen.visitor@csc.example").exists()


def test_it_refuses_a_withdrawn_link(invited, lead):
    invitation, path = invited
    invitation_revoke(admin=lead.user, invitation=invitation)
    response = Client().get(path)
    assert response.status_code == 410
    assert b"This invitation has been withdrawn" in response.content
    response = accept(Client(), path, make_enrolment(invitation.public_id, INVITEE_PASSWORD)[0])
    assert response.status_code == 410
    assert response.json()["reason"] == "This invitation has been withdrawn"
    assert not Professional.objects.filter(email="helen.visitor@csc.example").exists()
    assert len(kinds("invitation.revoked")) == 1


def test_it_withdraws_an_invitation_from_the_agency_page(client, invited):
    invitation, path = invited
    response = client.post(reverse("accounts:agency_invitation_revoke", args=[invitation.pk]))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == "revoked"
    assert Client().get(path).status_code == 410


def test_it_refuses_an_unknown_link(db):
    response = Client().get("/accounts/invitations/not-a-real-token/")
    assert response.status_code == 410
    assert b"This invitation is not valid" in response.content
    response = accept(Client(), "/accounts/invitations/not-a-real-token/", {})
    assert response.status_code == 410
    assert response.json()["reason"] == "This invitation link is not valid"


def test_it_refuses_keys_bound_to_another_account(invited):
    invitation, path = invited
    payload, _ = make_enrolment(uuid.uuid4(), INVITEE_PASSWORD)
    response = accept(Client(), path, payload)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid",
        "reason": "binding_signature does not verify for this account and these keys",
    }
    assert not Professional.objects.filter(email="helen.visitor@csc.example").exists()
    invitation.refresh_from_db()
    assert invitation.state == "pending"
    # The link still works for a correct attempt.
    assert accept(Client(), path, make_enrolment(invitation.public_id, INVITEE_PASSWORD)[0]).status_code == 200


def test_it_refuses_a_box_key_swapped_after_signing(invited):
    invitation, path = invited
    payload, _ = make_enrolment(invitation.public_id, INVITEE_PASSWORD)
    other, _ = make_enrolment(invitation.public_id, INVITEE_PASSWORD)
    payload["box_public"] = other["box_public"]
    response = accept(Client(), path, payload)
    assert response.status_code == 400
    assert "binding_signature does not verify" in response.json()["reason"]


@pytest.mark.parametrize(
    ("param", "reason"),
    [
        ("opslimit", "opslimit must be an integer from"),
        ("memlimit", "memlimit must be an integer from"),
    ],
)
def test_it_refuses_kdf_parameters_weaker_than_the_settings(invited, settings, param, reason):
    invitation, path = invited
    weak = {"opslimit": settings.TAC_KDF_OPSLIMIT, "memlimit": settings.TAC_KDF_MEMLIMIT}
    payload, _ = make_enrolment(invitation.public_id, INVITEE_PASSWORD, **weak)
    # Raise the floor above what this (genuine) browser used.
    setattr(settings, f"TAC_KDF_{param.upper()}", weak[param] * 2)
    response = accept(Client(), path, payload)
    assert response.status_code == 400
    assert response.json()["reason"].startswith(reason)
    assert not Professional.objects.filter(email="helen.visitor@csc.example").exists()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"opslimit": 0}, "opslimit must be an integer from"),
        ({"memlimit": 1024}, "memlimit must be an integer from"),
        ({"opslimit": "1"}, "opslimit must be an integer from"),
        ({"opslimit": 1000}, "opslimit must be an integer from"),
        ({"auth_key": "correct horse battery staple"}, "auth_key must be 64 lowercase hex characters"),
        ({"auth_key": "AB" * 32}, "auth_key must be 64 lowercase hex characters"),
        ({"salt": "c2hvcnQ="}, "salt must be 16 bytes, not 5"),
        ({"salt": "not base64!"}, "salt is not valid base64"),
        ({"wrapped_secret": None}, "wrapped_secret is missing or not a string"),
        ({"sign_public": "AAAA"}, "sign_public must be 32 bytes, not 3"),
    ],
)
def test_it_refuses_a_malformed_enrolment_with_a_reason(invited, change, reason):
    invitation, path = invited
    payload, _ = make_enrolment(invitation.public_id, INVITEE_PASSWORD)
    response = accept(Client(), path, {**payload, **change})
    assert response.status_code == 400
    assert response.json()["reason"].startswith(reason)
    assert not Professional.objects.filter(email="helen.visitor@csc.example").exists()


def test_it_refuses_a_body_that_is_not_a_json_object(invited):
    _, path = invited
    for body in ("[]", "not json"):
        response = Client().post(path, body, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["reason"] == "expected a JSON object"


def test_it_signs_out_whoever_was_signed_in_on_that_browser(client, invited, lead):
    invitation, path = invited
    # The admin opens the link in their own browser (to check it) and the invitee uses it there.
    response = accept(client, path, make_enrolment(invitation.public_id, INVITEE_PASSWORD)[0])
    assert response.status_code == 200
    professional = Professional.objects.get(email="helen.visitor@csc.example")
    assert client.session["_auth_user_id"] == str(professional.pk)
    assert client.get(reverse("accounts:agency"))["Location"].startswith(reverse("accounts:two_factor"))
