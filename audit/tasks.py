"""Jobs of the audit app (teamaroundchild/jobs.py runs them)."""

from teamaroundchild.jobs import app

from . import services


@app.periodic(cron="*/5 * * * *", periodic_id="audit_anchors")
@app.task(name="audit.anchors_record", queue="audit", lock="audit_anchors")
def anchors_record(timestamp: int) -> int:
    return services.anchors_record()
