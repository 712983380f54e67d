import pytest

from messaging.services import posts
from tests.messaging.factories import Client, join


@pytest.fixture
def pair(request, lead, gp, custodian):
    """The lead's workspace (the child's details at seq 1, epoch 1; the test module's DETAILS if it has
    them) with the GP admitted at epoch 2: (workspace, lead's client, GP's client).

    Both members' current keys are known to the post path, as after their first post in a worker, so
    their plain posts take the one statement first (messaging/services/posts.py::_post_plain) and every
    refusal test of a plain post checks that it declines and the general path refuses."""
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace(getattr(request.module, "DETAILS", {"name": "Child C"}))
    join(lead_client, workspace, gp_client)
    workspace.refresh_from_db()
    for client in (lead_client, gp_client):
        posts._current_keys[client.user.pk] = client.user.current_identity_key()
    return workspace, lead_client, gp_client
