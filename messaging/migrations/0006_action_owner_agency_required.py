import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Its own migration (its own transaction): PostgreSQL will not alter a table that 0005's data step
    has pending constraint checks on."""

    dependencies = [
        ('messaging', '0005_oversight_summaries'),
    ]

    operations = [
        migrations.AlterField(
            model_name='actionsummary',
            name='owner_agency',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.agency'),
        ),
    ]
