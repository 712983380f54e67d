from django.db import migrations


class Migration(migrations.Migration):
    """Indexes for the managers' dashboards (oversight/selectors.py). Which workspaces an agency takes
    part in (oversight/access.py), read for every figure: its staff's active memberships, answered from
    the index alone. Each agency's times to acknowledge red concerns, for the medians, likewise, less
    those of the (few) retracted concerns. The trends, which read only the weeks shown: actions completed
    since a moment (done_at, set only once done), and concerns whose response clock ran out since a moment
    (breached_at, set on few rows). Plain SQL both databases take, kept out of the models' state on
    purpose: they serve the oversight app's reads, and a later `makemigrations messaging` must not
    propose dropping them."""

    dependencies = [
        ("messaging", "0006_action_owner_agency_required"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE INDEX oversight_membership_agency ON messaging_membership "
                "(professional_id, state, workspace_id)",
            reverse_sql="DROP INDEX IF EXISTS oversight_membership_agency",
        ),
        migrations.RunSQL(
            sql="CREATE INDEX oversight_acknowledgement_time ON messaging_concernacknowledgement "
                "(rag, agency_id, seconds, concern_id)",
            reverse_sql="DROP INDEX IF EXISTS oversight_acknowledgement_time",
        ),
        migrations.RunSQL(
            sql="CREATE INDEX oversight_concern_retracted ON messaging_concernsummary (concern_id) WHERE retracted",
            reverse_sql="DROP INDEX IF EXISTS oversight_concern_retracted",
        ),
        migrations.RunSQL(
            sql="CREATE INDEX oversight_action_done_at ON messaging_actionsummary (done_at) "
                "WHERE done_at IS NOT NULL",
            reverse_sql="DROP INDEX IF EXISTS oversight_action_done_at",
        ),
        migrations.RunSQL(
            sql="CREATE INDEX oversight_concern_breached_at ON messaging_concernsummary (breached_at) "
                "WHERE breached_at IS NOT NULL",
            reverse_sql="DROP INDEX IF EXISTS oversight_concern_breached_at",
        ),
    ]
