"""Step two of unfreezing a workspace: install the appointment the custodians signed offline. It is
checked against the workspace's current manifest and the custodian key; then the appointee leads, and
their device starts the next key epoch when they next open the workspace."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from messaging.services import lead_appointment_install


class Command(BaseCommand):
    help = "Install a custodian-signed lead appointment (tac custodian-appoint writes it)."

    def add_arguments(self, parser):
        parser.add_argument("appointment", help="the signed appointment (JSON)")

    def handle(self, *args, appointment, **options):
        try:
            with open(appointment) as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {appointment}: {exc}") from exc
        try:
            stored = lead_appointment_install(appointment=data, actor_label="manage.py lead_appointment_install")
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"{stored.appointee.full_name} now leads {stored.workspace.reference}; their device starts "
                          f"the next key epoch when they next open it (they have been notified).")
