import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Agency, Professional
from accounts.services import agency_create, professional_create_with_password


class Command(BaseCommand):
    help = (
        "Create a professional (for example the first site administrator). The password is turned into keys "
        "here exactly as a browser would; `createsuperuser` cannot do that and is not supported."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", required=True)
        parser.add_argument("--job-title", required=True)
        parser.add_argument("--agency", required=True, help="agency name; created if --agency-kind is given")
        parser.add_argument("--agency-kind", choices=Agency.Kind.values)
        parser.add_argument("--role", choices=Professional.Role.values, default=Professional.Role.PRACTITIONER)
        parser.add_argument("--agency-admin", action="store_true")
        parser.add_argument("--site-admin", action="store_true")

    def handle(self, *args, **o):
        agency = Agency.objects.filter(name=o["agency"]).first()
        if agency is None:
            if not o["agency_kind"]:
                raise CommandError(f"no agency named {o['agency']!r}; pass --agency-kind to create it")
            agency = agency_create(name=o["agency"], kind=o["agency_kind"])
        password = getpass.getpass("Password (at least 12 characters): ")
        if len(password) < 12:
            raise CommandError("the password must be at least 12 characters")
        if getpass.getpass("Again: ") != password:
            raise CommandError("the passwords do not match")
        try:
            user = professional_create_with_password(
                password=password, email=o["email"], full_name=o["name"], job_title=o["job_title"],
                agency=agency, role=o["role"], is_agency_admin=o["agency_admin"], is_staff=o["site_admin"],
                actor_label="manage.py tac_user",
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"created {user.email}; they set up two-factor authentication at first sign-in")
