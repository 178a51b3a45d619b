"""Rollups of a member's usage of one project (dimension `member_project`), which the
chargeback reads: the triggers of migration 0015 are rebuilt with the new dimension, the
`dimension` column is widened for its name, and the stored facts are summed once."""

import importlib

from django.db import migrations, models

# The builders of the triggers and sums are 0015's own, with one dimension more.
rollups_0015 = importlib.import_module("usage.migrations.0015_usage_rollups")
DIMENSIONS = (*rollups_0015.DIMENSIONS, "member_project")
MEMBER_PROJECT_KEY = {"member_project": ("m.owner_id", "CAST(f.project_id AS TEXT)")}
CHOICES = [
    ("team", "The whole team"),
    ("member", "One member and source agent (key_id: the user's id, key_text: the source)"),
    ("machine", "One machine and source agent (key_id: its id, key_text: the source)"),
    ("project", "One project (key_id: its id)"),
    ("model", "One model (key_text)"),
    ("source", "One source agent (key_text)"),
    (
        "member_project",
        "One member's usage of one project (key_id: the user's id, key_text: the project's id)",
    ),
]
SQLITE_DROPS = (*rollups_0015.SQLITE_DROP, "DROP TRIGGER IF EXISTS usage_rollup_machine_moved;")


def _sqlite_drop(schema_editor) -> None:
    for sql in SQLITE_DROPS:
        schema_editor.execute(sql)


def drop_sqlite_triggers(apps, schema_editor):
    # SQLite rebuilds a table to widen a column: the triggers naming it are dropped first.
    if schema_editor.connection.vendor == "sqlite":
        _sqlite_drop(schema_editor)


def _install(schema_editor, dimensions) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        # The triggers stay; their functions are replaced.
        schema_editor.execute(rollups_0015.pg_function(dimensions))
        schema_editor.execute(rollups_0015.pg_machine_function(dimensions))
    elif vendor == "sqlite":
        _sqlite_drop(schema_editor)
        for sql in (
            *rollups_0015.sqlite_triggers(dimensions),
            rollups_0015.sqlite_machine_trigger(dimensions),
        ):
            schema_editor.execute(sql)
    else:
        raise RuntimeError(f"usage rollups have no triggers for {vendor}")


def install_triggers(apps, schema_editor):
    _install(schema_editor, DIMENSIONS)


def restore_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        _install(schema_editor, rollups_0015.DIMENSIONS)


def uninstall_triggers(apps, schema_editor):
    # Back to 0015's: PostgreSQL's functions now; SQLite's triggers after the column narrows.
    if schema_editor.connection.vendor == "postgresql":
        _install(schema_editor, rollups_0015.DIMENSIONS)
    else:
        _sqlite_drop(schema_editor)


def sum_member_projects(apps, schema_editor):
    rollups_0015.sum_facts(schema_editor, MEMBER_PROJECT_KEY)


def forget_member_projects(apps, schema_editor):
    for table in ("usage_usagerollup", "usage_usagerollupdelta"):
        schema_editor.execute(f"DELETE FROM {table} WHERE dimension = 'member_project'")  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [("usage", "0017_read_indexes")]

    operations = [
        migrations.RunPython(drop_sqlite_triggers, restore_sqlite_triggers),
        migrations.AlterField(
            model_name="usagerollup",
            name="dimension",
            field=models.CharField(choices=CHOICES, max_length=20),
        ),
        migrations.AlterField(
            model_name="usagerollupdelta",
            name="dimension",
            field=models.CharField(choices=CHOICES, max_length=20),
        ),
        migrations.RunPython(install_triggers, uninstall_triggers),
        migrations.RunPython(sum_member_projects, forget_member_projects),
    ]
