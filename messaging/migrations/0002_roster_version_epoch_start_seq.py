"""Workspace.roster_version / roster_keys_checked (fewer queries per post and per delivery) and
Epoch.start_seq in place of a post counter updated on every post."""

from django.db import migrations, models
from django.db.models import Max


def start_seq_from_posts(apps, schema_editor):
    """Posts go only in the current epoch, so when epoch N began the workspace's last post was the
    newest post of epochs before N."""
    Epoch = apps.get_model("messaging", "Epoch")
    Post = apps.get_model("messaging", "Post")
    for epoch in Epoch.objects.iterator():
        earlier = Post.objects.filter(workspace_id=epoch.workspace_id, epoch__number__lt=epoch.number)
        epoch.start_seq = earlier.aggregate(last=Max("seq"))["last"] or 0
        epoch.save(update_fields=["start_seq"])


class Migration(migrations.Migration):
    dependencies = [("messaging", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="workspace", name="roster_version", field=models.PositiveBigIntegerField(default=0)),
        migrations.AddField(
            model_name="workspace", name="roster_keys_checked", field=models.BigIntegerField(default=-1)),
        migrations.AddField(
            model_name="epoch", name="start_seq", field=models.PositiveBigIntegerField(default=0)),
        migrations.RunPython(start_seq_from_posts, migrations.RunPython.noop),
        migrations.RemoveField(model_name="epoch", name="post_count"),
    ]
