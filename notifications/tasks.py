"""Jobs of the notifications app (teamaroundchild/jobs.py runs them). Thin: each calls a service."""

from procrastinate import RetryStrategy

from teamaroundchild.jobs import app

from . import services

# A mail server that is down for a while: retried 8 times over about an hour and a half (2**n seconds,
# n = 1..8, plus 60 s each), then left failed in the queue for an administrator to see.
EMAIL_RETRY = RetryStrategy(max_attempts=8, wait=60, exponential_wait=2)


@app.task(name="notifications.email_send", queue="email", retry=EMAIL_RETRY)
def notification_email_send(notification_id: int) -> str:
    return services.notification_email_send(notification_id=notification_id)


@app.periodic(cron="*/15 * * * *", periodic_id="digests")
@app.task(name="notifications.digests_send", queue="email", retry=EMAIL_RETRY)
def digests_send(timestamp: int) -> int:
    return services.digests_send()
