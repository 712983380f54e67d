"""One chain per workspace, one for accounts, and a site chain of anchors, instead of one head row that
every audited change waited on. The rows kept so far become the accounts chain, unchanged (same
sequence numbers, same hashes: its genesis is the old one); workspace chains start with the next event
about each workspace."""

import django.db.models.deletion
from django.db import migrations, models

GENESIS_HASH = "0" * 64


def to_accounts_chain(apps, schema_editor):
    AuditChain = apps.get_model("audit", "AuditChain")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditHead = apps.get_model("audit", "AuditHead")
    head = AuditHead.objects.filter(pk=1).first()
    last = AuditEvent.objects.order_by("-seq").first()
    # The head as it was; a database with rows but no head (never seen) takes the last row's.
    seq, hash_ = (head.seq, head.hash) if head else ((last.seq, last.hash) if last else (0, GENESIS_HASH))
    accounts = AuditChain.objects.create(name="accounts", seq=seq, hash=hash_)
    AuditEvent.objects.update(chain=accounts)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditChain",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=64, unique=True)),
                ("seq", models.PositiveBigIntegerField(default=0)),
                ("hash", models.CharField(max_length=64)),
            ],
        ),
        migrations.AddField(
            model_name="auditevent",
            name="chain",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="events",
                                    to="audit.auditchain"),
        ),
        migrations.RunPython(to_accounts_chain, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="chain",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="events",
                                    to="audit.auditchain"),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.PositiveBigIntegerField(),
        ),
        migrations.AlterModelOptions(
            name="auditevent",
            options={"ordering": ["chain_id", "seq"]},
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(fields=("chain", "seq"), name="audit_event_chain_seq"),
        ),
        migrations.DeleteModel(name="AuditHead"),
        migrations.CreateModel(
            name="AuditAnchor",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.PositiveBigIntegerField()),
                ("hash", models.CharField(max_length=64)),
                ("chain", models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="anchor",
                                               to="audit.auditchain")),
            ],
        ),
    ]
