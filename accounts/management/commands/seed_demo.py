"""`make run` seeds a demo: agencies and professionals with printed passwords and TOTP secrets.

Passwords are random, made on the first run and kept in .demo-credentials (git-ignored, mode 600) so a
second `make run` prints the same logins. Keys are derived with the same Python code a browser mirrors.
"""

import base64
import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Agency, Professional
from accounts.services import agency_create, professional_create_with_password

AGENCIES = [
    ("Northshire Children's Social Care", Agency.Kind.CHILDRENS_SOCIAL_CARE),
    ("Riverside Medical Practice", Agency.Kind.GP_PRACTICE),
    ("Northshire Maternity Service", Agency.Kind.MATERNITY),
    ("St Anne's Primary School", Agency.Kind.SCHOOL),
    ("Northshire Police", Agency.Kind.POLICE),
]

PEOPLE = [
    # email, name, job title, agency index, role, agency admin, site admin
    ("sam.lead@demo.tac", "Sam Okafor", "Social worker", 0, "practitioner", False, False),
    ("morgan.manager@demo.tac", "Morgan Price", "Team manager", 0, "manager", True, True),
    ("priya.gp@demo.tac", "Dr Priya Shah", "GP", 1, "practitioner", True, False),
    ("jo.midwife@demo.tac", "Jo Evans", "Community midwife", 2, "practitioner", True, False),
    ("alex.school@demo.tac", "Alex Brown", "Designated safeguarding lead", 3, "practitioner", True, False),
    ("chris.police@demo.tac", "DC Chris Hall", "Detective constable", 4, "practitioner", True, False),
]


class Command(BaseCommand):
    help = "Create the demo agencies and professionals (idempotent) and print their logins."

    def add_arguments(self, parser):
        parser.add_argument("--credentials", default=str(Path(settings.BASE_DIR) / ".demo-credentials"))

    def handle(self, *args, **options):
        path = Path(options["credentials"])
        stored = json.loads(path.read_text()) if path.exists() else {}
        with transaction.atomic():
            agencies = []
            for name, kind in AGENCIES:
                agencies.append(Agency.objects.filter(name=name).first() or agency_create(name=name, kind=kind))
            for email, name, title, agency_index, role, agency_admin, site_admin in PEOPLE:
                if Professional.objects.filter(email=email).exists():
                    continue
                password = "-".join(secrets.token_urlsafe(6) for _ in range(3))
                user = professional_create_with_password(
                    password=password, email=email, full_name=name, job_title=title,
                    agency=agencies[agency_index], role=role, is_agency_admin=agency_admin, is_staff=site_admin,
                    actor_label="manage.py seed_demo",
                )
                device = TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
                stored[email] = {
                    "password": password,
                    "totp_secret": base64.b32encode(device.bin_key).decode().rstrip("="),
                }
        path.write_text(json.dumps(stored, indent=2))
        os.chmod(path, 0o600)
        self.stdout.write("\nDemo logins (sign in at http://127.0.0.1:8000/accounts/sign-in/):\n")
        for email, name, title, agency_index, *_ in PEOPLE:
            creds = stored.get(email)
            if creds is None:
                self.stdout.write(f"  {email}: created before {path} existed; its password is unknown")
                continue
            self.stdout.write(
                f"  {name:16} {title:30} {AGENCIES[agency_index][0]}\n"
                f"      email {email}   password {creds['password']}   TOTP secret {creds['totp_secret']}"
            )
        self.stdout.write(
            "\nAdd a TOTP secret to an authenticator app, or print the current code with:\n"
            "  .venv/bin/python manage.py demo_totp <email>\n"
        )
