from django.db import migrations

# Every row is inserted once and deleted minutes later: a queue table churns through its whole
# content constantly. The default scale factors (20 % of the table) let dead tuples pile up
# into bloat that slows the claim scan; fixed thresholds keep vacuum and analyze frequent.
AUTOVACUUM_SETTINGS = {
    "autovacuum_vacuum_scale_factor": 0,
    "autovacuum_vacuum_threshold": 5000,
    "autovacuum_vacuum_insert_scale_factor": 0,
    "autovacuum_vacuum_insert_threshold": 20000,
    "autovacuum_analyze_scale_factor": 0,
    "autovacuum_analyze_threshold": 20000,
}


class Migration(migrations.Migration):
    dependencies = [("outbox", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql="ALTER TABLE outbox_event SET ({})".format(
                ", ".join(f"{name} = {value}" for name, value in AUTOVACUUM_SETTINGS.items())
            ),
            reverse_sql="ALTER TABLE outbox_event RESET ({})".format(
                ", ".join(AUTOVACUUM_SETTINGS)
            ),
        )
    ]
