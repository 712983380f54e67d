"""`manage.py tac_worker`: runs background jobs (teamaroundchild/jobs.py).

On PostgreSQL it is procrastinate's worker (`manage.py procrastinate worker`): deferred jobs and the
periodic clocks, retried as each task says; start as many as you like, on any machine that reaches the
database. On the quick start's SQLite it runs the periodic jobs in this process every --interval seconds
(deferred jobs already run in the web process there)."""

from django.conf import settings
from django.core.management import BaseCommand, call_command
from django.utils.module_loading import autodiscover_modules

from teamaroundchild import jobs


class Command(BaseCommand):
    help = "Run background jobs: the task queue's worker on PostgreSQL; the periodic jobs in-process on SQLite."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=60.0,
                            help="SQLite only: seconds between runs of the periodic jobs (default 60)")
        parser.add_argument("--once", action="store_true",
                            help="SQLite: run the periodic jobs once and stop; PostgreSQL: run the jobs due now and stop")

    def handle(self, *args, interval: float, once: bool, **options):
        if settings.TAC_JOB_QUEUE:
            worker_args = ["worker"] + (["--one-shot"] if once else [])
            call_command("procrastinate", *worker_args)
            return
        autodiscover_modules("tasks")
        self.stdout.write(f"Quick start (SQLite): running the periodic jobs every {interval:g} s in this process.")
        jobs.run_periodic_in_process(interval=interval, once=once)
