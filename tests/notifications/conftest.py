from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import connection
from procrastinate.contrib.django.models import ProcrastinateJob

from messaging.models import Workspace
from notifications.models import Notification
from tests.messaging.factories import Client, join


@dataclass
class Team:
    workspace: Workspace
    lead: Client
    gp: Client


@pytest.fixture
def team(lead, gp, custodian) -> Team:
    """Sam Lead's workspace (the child's details at seq 1) with Dr Priya GP admitted."""
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example", "dob": "2019-04-02"})
    join(lead_client, workspace, gp_client)
    workspace.refresh_from_db()
    # Joining told the GP of the invitation: each test starts from no notifications and no email jobs.
    Notification.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs")
    return Team(workspace, lead_client, gp_client)


def email_jobs() -> list[int]:
    """The notification ids of the email jobs deferred so far (procrastinate's table: tests on PostgreSQL
    write jobs there and run none unless they start a worker)."""
    return [job.args["notification_id"] for job in
            ProcrastinateJob.objects.filter(task_name="notifications.email_send").order_by("id")]
