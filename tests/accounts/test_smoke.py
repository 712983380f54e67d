import pytest
from django.urls import reverse

from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def test_it_signs_in_with_auth_key_and_totp(client, lead):
    sign_in(client, lead)
    response = client.get(reverse("frontend:home"))
    assert response.status_code == 200
    assert b"Sam Lead" in response.content


def test_it_sends_a_password_only_session_to_two_factor(client, lead):
    sign_in(client, lead, verify=False)
    response = client.get(reverse("frontend:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:two_factor"))
