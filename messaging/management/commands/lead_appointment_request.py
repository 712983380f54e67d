"""Step one of unfreezing a workspace whose lead has gone with no deputy left: write the request the
records custodians sign offline (`tac custodian-appoint`), naming the workspace's current signed manifest
and the member to appoint. Step two is `manage.py lead_appointment_install` with what they sign."""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Professional
from messaging.models import Workspace
from messaging.services import lead_appointment_request


class Command(BaseCommand):
    help = "Write a lead appointment request for a frozen workspace, for the custodians to sign offline."

    def add_arguments(self, parser):
        parser.add_argument("reference", help="the workspace reference, e.g. TAC-2026-0042")
        parser.add_argument("--lead", required=True, help="the email of the member to appoint as lead")
        parser.add_argument("--out", required=True, help="where to write the request (JSON)")

    def handle(self, *args, reference, lead, out, **options):
        workspace = Workspace.objects.filter(reference=reference).select_related("lead").first()
        if workspace is None:
            raise CommandError(f"no workspace {reference}")
        appointee = Professional.objects.filter(email__iexact=lead).select_related("agency").first()
        if appointee is None:
            raise CommandError(f"no professional with the email {lead}")
        # The request is audited only if it was written: a request nobody can sign was never made.
        with transaction.atomic():
            try:
                request = lead_appointment_request(workspace=workspace, appointee=appointee,
                                                   actor_label="manage.py lead_appointment_request")
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
            try:
                with open(out, "w") as f:
                    json.dump(request, f, indent=2)
                    f.write("\n")
            except OSError as exc:
                raise CommandError(f"cannot write {out}: {exc}") from exc
        self.stdout.write(f"Request written to {out}: appoint {appointee.full_name} ({appointee.agency.name}) lead of "
                          f"{reference} after key epoch {request['epoch']}.\n"
                          f"Two custodians sign it offline: tac custodian-appoint {out} --out appointment.json "
                          f"(their shares on standard input), after {appointee.full_name} reads them their safety "
                          f"number. Then: manage.py lead_appointment_install appointment.json")
