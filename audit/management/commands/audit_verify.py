from django.core.management.base import BaseCommand, CommandError

from audit.selectors import audit_verify


class Command(BaseCommand):
    help = ("Verify every audit hash chain (each workspace's, the accounts chain, the site chain) and the heads "
            "the site chain anchored; exit 1 naming the first altered or missing row of each broken chain.")

    def handle(self, *args, **options):
        report = audit_verify()
        if report.problems:
            lines = [f"audit chain {p.chain} broken at row {p.seq}: {p.reason}" for p in report.problems]
            raise CommandError("\n".join(lines))
        self.stdout.write(f"audit chains intact: {counted(report.rows, 'row')} in {counted(report.chains, 'chain')}, "
                          f"{counted(report.anchors, 'anchored head')} checked")


def counted(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"
