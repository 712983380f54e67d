"""Every reader's browser verifies each post: an altered post is shown with a clear warning, not
silently dropped or shown as genuine. A colleague's changed key (no automatic re-keying any more) is
test_hostile_server_keys.py's first test."""

import pytest
from playwright.sync_api import expect

from messaging import services
from messaging.models import Post
from tests.browser.journeys import sign_in
from tests.messaging.factories import Client

pytestmark = pytest.mark.browser


@pytest.fixture
def team(lead, gp, custodian, capture_events):
    # Made in the test process through the services; their events (captured, not sent) would need an
    # event loop that Playwright already holds in this thread. The pages load after this anyway.
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    lead_client.invite(workspace, gp.user)
    services.membership_respond(professional=gp.user, workspace=workspace, accept=True)
    lead_client.rotate(workspace)
    gp_client.post(workspace, "concern", {"category": "neglect", "detail": "Genuine concern text"}, rag="amber")
    gp_client.post(workspace, "update", {"text": "This one will be altered"})
    return workspace


def test_it_warns_about_a_post_whose_bytes_were_altered(page, lead, team):
    altered = Post.objects.get(kind="update")
    ciphertext = bytearray(altered.ciphertext)
    ciphertext[0] ^= 1
    Post.objects.filter(pk=altered.pk).update(ciphertext=bytes(ciphertext))

    sign_in(page, lead)
    page.goto(f"/workspaces/{team.public_id}/")
    expect(page.locator(".tac-post", has_text="Genuine concern text")).to_be_visible()
    warning = page.locator(f"#post-{altered.post_id}")
    expect(warning).to_contain_text("signature does not verify")
    expect(warning).not_to_contain_text("This one will be altered")

