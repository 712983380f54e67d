import pytest

from tests.messaging.factories import Client, join


@pytest.fixture
def pair(request, lead, gp, custodian):
    """The lead's workspace (the child's details at seq 1, epoch 1; the test module's DETAILS if it has
    them) with the GP admitted at epoch 2: (workspace, lead's client, GP's client)."""
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace(getattr(request.module, "DETAILS", {"name": "Child C"}))
    join(lead_client, workspace, gp_client)
    workspace.refresh_from_db()
    return workspace, lead_client, gp_client
