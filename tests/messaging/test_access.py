"""The active-member rule (messaging/access.py), written once with two forms: the ORM's filter terms and
the SQL condition the live path's hand-written statements use (messaging/storage.py). They must agree
for every membership state, for an account that is active or offboarded, and with no membership."""

from __future__ import annotations

import pytest

from messaging import access, storage
from messaging.models import Membership
from tests.messaging.factories import Client

pytestmark = pytest.mark.django_db

CASES = [(state, active) for state in Membership.State.values for active in (True, False)] + [(None, True)]


@pytest.fixture
def workspace(lead, custodian):
    return Client(lead, custodian).create_workspace({"name": "Child R"})


@pytest.mark.parametrize(("state", "account_active"), CASES)
def test_the_sql_and_orm_forms_of_the_rule_agree(workspace, make_persona, lead, state, account_active):
    person = make_persona(f"p-{state}-{account_active}@csc.example").user
    if state is not None:
        Membership.objects.create(workspace=workspace, professional=person, state=state, invited_by=lead.user)
    if not account_active:
        type(person).objects.filter(pk=person.pk).update(is_active=False)
        person.refresh_from_db()
    expected = state == Membership.State.ACTIVE and account_active
    orm = Membership.objects.filter(workspace=workspace, **access.active_member_terms(person.pk)).exists()
    annotated = type(workspace).objects.filter(pk=workspace.pk).filter(access.active_member_exists(person.pk)).exists()
    assert orm == annotated == storage.is_active_member(person.pk, workspace.pk) == expected
    assert (storage.workspace_if_member(person.pk, workspace.public_id) is not None) == expected
    assert (access.active_membership(person, workspace) is not None) == expected
