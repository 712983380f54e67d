"""Offboarding ends all access at once: the account is disabled, its sessions end, its sockets are told."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts.access import can_administer
from accounts.services import professional_offboard
from audit.models import AuditEvent
from messaging.events import SESSION_REVOKED, user_group
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def kinds(kind: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=kind))


def test_it_offboards_a_colleague(client, lead, manager, capture_events, django_capture_on_commit_callbacks):
    colleague = sign_in(Client(), manager)
    colleague_phone = sign_in(Client(), manager)
    sign_in(client, lead)
    page = client.get(reverse("accounts:agency_offboard", args=[manager.user.pk]))
    assert b"Offboard Morgan Manager?" in page.content

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:agency_offboard", args=[manager.user.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:agency")
    assert "Morgan Manager has been offboarded" in client.get(reverse("accounts:agency")).content.decode()

    manager.user.refresh_from_db()
    assert not manager.user.is_active
    assert manager.user.offboarded_at is not None
    assert manager.user.session_generation == 1
    assert capture_events == [
        (user_group(manager.user.pk), {"type": SESSION_REVOKED, "reason": "account offboarded"})
    ]
    [event] = kinds("account.offboarded")
    assert (event.actor_id, event.target_type, event.target_id) == (
        lead.user.pk, "accounts.professional", str(manager.user.pk)
    )

    for c in (colleague, colleague_phone):
        response = c.get(reverse("frontend:home"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
        assert c.get(reverse("accounts:api_my_keys")).status_code == 401
    # The admin carries on.
    assert client.get(reverse("frontend:home")).status_code == 200


def test_it_keeps_the_offboarded_account_out_afterwards(client, lead, manager):
    auth_key = manager.auth_key()
    professional_offboard(admin=lead.user, professional=manager.user)
    response = client.post(reverse("accounts:login"), {"email": manager.user.email, "auth_key": auth_key})
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(kind="auth.sign_in", actor_id=manager.user.pk).exists()


def test_it_shows_the_offboarded_account_as_such_on_the_agency_page(client, lead, manager):
    professional_offboard(admin=lead.user, professional=manager.user)
    sign_in(client, lead)
    html = client.get(reverse("accounts:agency")).content.decode()
    row = html.split(f'data-tac-staff="{manager.user.email}"', 1)[1].split("</tr>", 1)[0]
    assert "Offboarded" in row
    assert "Offboard<" not in row  # no second offboarding link


def test_it_cannot_offboard_an_account_twice(client, lead, manager):
    professional_offboard(admin=lead.user, professional=manager.user)
    sign_in(client, lead)
    response = client.post(reverse("accounts:agency_offboard", args=[manager.user.pk]), follow=True)
    assert b"This account is already offboarded" in response.content
    manager.user.refresh_from_db()
    assert manager.user.session_generation == 1
    assert len(kinds("account.offboarded")) == 1


def test_it_does_not_let_an_admin_offboard_themselves(client, lead, capture_events, django_capture_on_commit_callbacks):
    sign_in(client, lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:agency_offboard", args=[lead.user.pk]), follow=True)
    assert response.status_code == 200
    assert b"You cannot offboard yourself" in response.content
    lead.user.refresh_from_db()
    assert lead.user.is_active
    assert lead.user.session_generation == 0
    assert capture_events == []
    assert kinds("account.offboarded") == []
    assert client.get(reverse("frontend:home")).status_code == 200
    with pytest.raises(ValidationError):
        professional_offboard(admin=lead.user, professional=lead.user)


def test_it_hides_the_offboarding_of_another_agencys_staff(client, manager, gp, capture_events,
                                                          django_capture_on_commit_callbacks):
    colleague = sign_in(Client(), manager)
    sign_in(client, gp)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(reverse("accounts:agency_offboard", args=[manager.user.pk])).status_code == 404
        assert client.post(reverse("accounts:agency_offboard", args=[manager.user.pk])).status_code == 404
    manager.user.refresh_from_db()
    assert manager.user.is_active
    assert capture_events == []
    assert kinds("account.offboarded") == []
    assert colleague.get(reverse("frontend:home")).status_code == 200


def test_it_does_not_let_a_colleague_who_is_not_an_admin_offboard(client, lead, manager):
    sign_in(client, manager)
    assert client.post(reverse("accounts:agency_offboard", args=[lead.user.pk])).status_code == 404
    lead.user.refresh_from_db()
    assert lead.user.is_active


def test_it_lets_an_offboarded_admin_offboard_no_one(lead, manager, make_persona):
    deputy = make_persona("deputy@csc.example", "csc", is_agency_admin=True)
    professional_offboard(admin=deputy.user, professional=lead.user)
    lead.user.refresh_from_db()
    assert not can_administer(lead.user, manager.user)
    assert can_administer(deputy.user, manager.user)
