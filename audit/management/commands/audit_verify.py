from django.core.management.base import BaseCommand, CommandError

from audit.models import AuditEvent
from audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit hash chain; exit 1 naming the first altered or missing row."

    def handle(self, *args, **options):
        problem = audit_chain_verify()
        if problem is not None:
            raise CommandError(f"audit chain broken at row {problem.seq}: {problem.reason}")
        self.stdout.write(f"audit chain intact: {AuditEvent.objects.count()} rows")
