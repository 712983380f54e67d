"""Jobs of the oversight app (teamaroundchild/jobs.py runs them)."""

from teamaroundchild.jobs import app

from . import services


@app.periodic(cron="* * * * *", periodic_id="clocks")
@app.task(name="oversight.clocks_run", queue="clocks", lock="clocks")
def clocks_run(timestamp: int) -> dict[str, int]:
    # The lock runs one clock job at a time across every worker; each step also skips rows another
    # transaction holds, so an overlap would do no harm either.
    return services.clocks_run()
