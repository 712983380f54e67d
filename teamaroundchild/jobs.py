"""Background work: how a change asks for a job, and where jobs run (README.md, "Background work").

As deployed (PostgreSQL), jobs are procrastinate jobs: `defer` writes the job row through Django's own
connection, inside the transaction of the change that causes it, so a job exists exactly when its change
committed, and a process that dies after the commit loses nothing. Workers (`manage.py tac_worker`, one
or many, on any machine that reaches the database) take jobs with SELECT ... FOR UPDATE SKIP LOCKED, retry
what failed, and run the periodic jobs (the clocks, the digests) once per period among them all.

On the quick start's SQLite there is no queue: `defer` runs the same job function in this process right
after the commit, and `manage.py tac_worker` runs the periodic ones on a timer. A failure is logged and
not retried there: the quick start is for trying the product, not for running it."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from procrastinate.contrib.django import app
from procrastinate.tasks import Task

logger = logging.getLogger(__name__)

__all__ = ["app", "defer", "run_periodic_in_process"]


def defer(task: Task, **kwargs: Any) -> None:
    """Ask for `task(**kwargs)` to run once the current transaction commits (never if it rolls back)."""
    if settings.TAC_JOB_QUEUE:
        # procrastinate's Django connector writes through this very connection: the job row commits or
        # rolls back with the change.
        task.defer(**kwargs)
        return

    def run() -> None:
        try:
            task(**kwargs)
        except Exception:  # the quick start logs and carries on; the queue would retry
            logger.exception("job %s failed (quick start: run in-process, not retried)", task.name)

    transaction.on_commit(run)


def periodic_tasks() -> list[Task]:
    return [p.task for p in app.periodic_registry.periodic_tasks.values()]


def run_periodic_in_process(*, interval: float = 60.0, once: bool = False) -> None:
    """The quick start's stand-in for the worker's periodic jobs: each runs every `interval` seconds. Every
    periodic job here is written to be run at any moment (it acts on what has come due), so running it
    more often than its schedule is harmless."""
    while True:
        now = int(time.time())
        for task in periodic_tasks():
            try:
                task(timestamp=now)
            except Exception:
                logger.exception("periodic job %s failed", task.name)
        if once:
            return
        time.sleep(interval)
