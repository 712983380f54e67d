import pytest

from messaging import services
from tests.messaging.factories import Client, due

pytestmark = pytest.mark.django_db


def test_it_runs_the_whole_team_flow(lead, gp, custodian):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Child A", "nhs_number": "9434765919"})
    assert workspace.reference.startswith("TAC-")
    lead_client.invite(workspace, gp.user)
    services.membership_respond(professional=gp.user, workspace=workspace, accept=True)
    lead_client.rotate(workspace)
    concern = gp_client.post(workspace, "concern", {"category": "neglect", "detail": "Missed two appointments"},
                             rag="red")
    action = lead_client.post(workspace, "action", {"title": "Home visit", "detail": ""}, owner=gp.user.public_id,
                              due=due(3))
    gp_client.post(workspace, "action_status", {"note": "Visited"}, target=action.post.post_id, status="done")
    lead_client.post(workspace, "acknowledgement", {}, target=concern.post.post_id)
    workspace.refresh_from_db()
    assert workspace.current_rag == "red"
    seen = lead_client.read(workspace)
    assert [p.header.kind for p in seen] == ["details", "concern", "action", "action_status", "acknowledgement"]
    # The GP joined at epoch 2: the child's details (epoch 1) are history not shared with them.
    assert [p.header.kind for p in gp_client.read(workspace)] == ["concern", "action", "action_status",
                                                                   "acknowledgement"]
    assert seen[1].body["detail"] == "Missed two appointments"
