"""Rollups of daily facts (usage.rollups) and the triggers on usage_dailyusage that keep them:
statement-level on PostgreSQL (appending grouped changes to usage_usagerollupdelta), row-level
on SQLite (updating usage_usagerollup directly). Existing facts are summed once at the end."""

# SQL here is built from this module's constants; values always go in as parameters.
# ruff: noqa: S608

import django.db.models.deletion
import django.utils.timezone
from decimal import Decimal
from django.db import migrations, models

FIGURES = (
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "total_tokens",
    "cost_usd",
)
COLUMNS = "team_id, period, day, dimension, key_id, key_text, " + ", ".join(FIGURES) + ", facts"
DIMENSIONS = ("team", "member", "machine", "project", "model", "source")


def _key_id(row: str, owner: str = "m.owner_id", dimensions=DIMENSIONS) -> str:
    """The key id of a fact `row` in dimension d.dimension (`owner`: its machine's owner)."""
    ids = {
        "member": owner,
        "machine": f"{row}.machine_id",
        "project": f"{row}.project_id",
        # Added by migration 0018 (a member's usage of one project: the chargeback).
        "member_project": owner,
    }
    cases = " ".join(f"WHEN '{d}' THEN {ids[d]}" for d in ids if d in dimensions)
    return f"CASE d.dimension {cases} ELSE 0 END"


def _key_text(row: str, dimensions=DIMENSIONS) -> str:
    # Member and machine rows are per source too (plan value and productivity read one
    # member's or machine's Claude Code usage).
    texts = {
        "model": f"{row}.model",
        "team": "''",
        "project": "''",
        "member_project": f"CAST({row}.project_id AS TEXT)",
    }
    cases = " ".join(f"WHEN '{d}' THEN {texts[d]}" for d in texts if d in dimensions)
    return f"CASE d.dimension {cases} ELSE {row}.source END"


def _pg_dimensions(dimensions) -> str:
    return "(VALUES " + ", ".join(f"('{d}')" for d in dimensions) + ") AS d(dimension)"


PG_DIMENSIONS = _pg_dimensions(DIMENSIONS)
# `all` rows hold each key's whole history (day 0001-01-01): all-time figures read one row.
PG_PERIODS = "(VALUES ('day'), ('month'), ('all')) AS p(period)"


def _pg_append(changes: str, dimensions=DIMENSIONS) -> str:
    """Append the grouped changes (rows of facts with a sign) to the delta table: day rows per
    dimension first, then the month and all-time rows from those (fewer rows to group)."""
    sums = ", ".join(f"SUM(c.{name}) AS {name}" for name in (*FIGURES, "facts"))
    resum = ", ".join(f"SUM(g.{name})" for name in (*FIGURES, "facts"))
    copy = ", ".join(f"g.{name}" for name in (*FIGURES, "facts"))
    nonzero = " OR ".join(f"g.{name} <> 0" for name in (*FIGURES, "facts"))
    keys = "g.team_id, g.dimension, g.key_id, g.key_text"
    return f"""
      WITH g AS (
        SELECT m.team_id, c.day, d.dimension, {_key_id("c", dimensions=dimensions)} AS key_id,
          {_key_text("c", dimensions)} AS key_text, {sums}
        FROM ({changes}) AS c
        JOIN usage_machine m ON m.id = c.machine_id
        CROSS JOIN {_pg_dimensions(dimensions)}
        GROUP BY 1, 2, 3, 4, 5
      ), n AS (
        SELECT * FROM g WHERE {nonzero}
      )
      INSERT INTO usage_usagerollupdelta ({COLUMNS})
      SELECT g.team_id, 'day', g.day, g.dimension, g.key_id, g.key_text, {copy} FROM n AS g
      UNION ALL
      SELECT g.team_id, 'month', CAST(date_trunc('month', g.day) AS date), g.dimension,
        g.key_id, g.key_text, {resum}
      FROM n AS g GROUP BY {keys}, CAST(date_trunc('month', g.day) AS date)
      UNION ALL
      SELECT g.team_id, 'all', DATE '0001-01-01', g.dimension, g.key_id, g.key_text, {resum}
      FROM n AS g GROUP BY {keys};"""


def _signed(alias: str, sign: str) -> str:
    figures = ", ".join(f"{sign}{alias}.{name} AS {name}" for name in FIGURES)
    return (
        f"{alias}.machine_id, {alias}.day, {alias}.project_id, {alias}.model, {alias}.source, "
        f"{figures}, {sign}1 AS facts"
    )


def pg_function(dimensions) -> str:
    """The PostgreSQL trigger function that appends a statement's changes for `dimensions`."""
    both = f"SELECT {_signed('n', '')} FROM new_rows n UNION ALL SELECT {_signed('o', '-')} FROM old_rows o"
    return f"""
CREATE OR REPLACE FUNCTION usage_rollup_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_pg_append(f"SELECT {_signed('n', '')} FROM new_rows n", dimensions)}
  ELSIF TG_OP = 'DELETE' THEN
    {_pg_append(f"SELECT {_signed('o', '-')} FROM old_rows o", dimensions)}
  ELSE
    -- New figures in, old ones out; a row rewritten unchanged nets to nothing and its
    -- groups are left out (no join of the two transition tables: they have no statistics,
    -- and a nested loop over them cost seconds for a full history).
    {_pg_append(both, dimensions)}
  END IF;
  RETURN NULL;
END
$$;"""


PG_FUNCTION = (
    pg_function(DIMENSIONS)
    + """
CREATE TRIGGER usage_rollup_insert AFTER INSERT ON usage_dailyusage
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_changes();
CREATE TRIGGER usage_rollup_update AFTER UPDATE ON usage_dailyusage
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_changes();
CREATE TRIGGER usage_rollup_delete AFTER DELETE ON usage_dailyusage
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_changes();
"""
)
PG_DROP = """
DROP TRIGGER IF EXISTS usage_rollup_insert ON usage_dailyusage;
DROP TRIGGER IF EXISTS usage_rollup_update ON usage_dailyusage;
DROP TRIGGER IF EXISTS usage_rollup_delete ON usage_dailyusage;
DROP FUNCTION IF EXISTS usage_rollup_changes();
"""


def _sqlite_dimensions(dimensions) -> str:
    return "(" + " UNION ALL ".join(f"SELECT '{d}' AS dimension" for d in dimensions) + ") AS d"


SQLITE_PERIODS = "(SELECT 'day' AS period UNION ALL SELECT 'month' UNION ALL SELECT 'all') AS p"


def _sqlite_apply(row: str, sign: str, dimensions) -> str:
    figures = ", ".join(f"{sign}{row}.{name}" for name in FIGURES)
    assign = ", ".join(f"{name} = {name} + excluded.{name}" for name in (*FIGURES, "facts"))
    return f"""
  INSERT INTO usage_usagerollup ({COLUMNS})
  SELECT m.team_id, p.period,
    CASE p.period WHEN 'day' THEN {row}.day WHEN 'month' THEN substr({row}.day, 1, 8) || '01'
      ELSE '0001-01-01' END,
    d.dimension, {_key_id(row, dimensions=dimensions)}, {_key_text(row, dimensions)}, {figures}, {sign}1
  FROM usage_machine m, {SQLITE_PERIODS}, {_sqlite_dimensions(dimensions)}
  WHERE m.id = {row}.machine_id
  ON CONFLICT (team_id, dimension, period, day, key_id, key_text) DO UPDATE SET {assign};"""


SQLITE_EMPTY = "\n  DELETE FROM usage_usagerollup WHERE facts = 0;"
_SQLITE_CHANGED = " OR ".join(
    f"OLD.{name} IS NOT NEW.{name}"
    for name in ("machine_id", "day", "project_id", "model", "source", *FIGURES)
)


def sqlite_triggers(dimensions) -> list[str]:
    """SQLite's row-level triggers on usage_dailyusage for `dimensions`."""
    return [
        f"CREATE TRIGGER usage_rollup_insert AFTER INSERT ON usage_dailyusage BEGIN"
        f"{_sqlite_apply('NEW', '', dimensions)}\nEND;",
        f"CREATE TRIGGER usage_rollup_update AFTER UPDATE ON usage_dailyusage "
        f"WHEN {_SQLITE_CHANGED} BEGIN"
        f"{_sqlite_apply('OLD', '-', dimensions)}{_sqlite_apply('NEW', '', dimensions)}"
        f"{SQLITE_EMPTY}\nEND;",
        f"CREATE TRIGGER usage_rollup_delete AFTER DELETE ON usage_dailyusage BEGIN"
        f"{_sqlite_apply('OLD', '-', dimensions)}{SQLITE_EMPTY}\nEND;",
    ]


SQLITE_TRIGGERS = sqlite_triggers(DIMENSIONS)
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS usage_rollup_insert;",
    "DROP TRIGGER IF EXISTS usage_rollup_update;",
    "DROP TRIGGER IF EXISTS usage_rollup_delete;",
]


# A machine moved to another team (its owner changed teams: usage.receivers) or owner takes
# its facts along: their sums leave the old team's and member's rows for the new ones.
def _moved_rows(who: str, sign: str) -> str:
    figures = ", ".join(f"{sign}f.{name} AS {name}" for name in FIGURES)
    return (
        f"SELECT {who}.team_id, {who}.owner_id, f.machine_id, f.day, f.project_id, f.model, "
        f"f.source, {figures}, {sign}1 AS facts FROM usage_dailyusage f "
        "JOIN old_rows o ON o.id = f.machine_id JOIN new_rows n ON n.id = o.id "
        "WHERE o.team_id <> n.team_id OR o.owner_id <> n.owner_id"
    )


def pg_machine_function(dimensions) -> str:
    """The PostgreSQL trigger function that moves a moved machine's sums for `dimensions`."""
    return f"""
CREATE OR REPLACE FUNCTION usage_rollup_machine_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Most machine updates (last seen, names) move nothing: leave at once.
  IF NOT EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
                 WHERE o.team_id <> n.team_id OR o.owner_id <> n.owner_id) THEN
    RETURN NULL;
  END IF;
  INSERT INTO usage_usagerollupdelta ({COLUMNS})
  SELECT c.team_id, p.period,
    CASE p.period WHEN 'day' THEN c.day WHEN 'month' THEN CAST(date_trunc('month', c.day) AS date)
      ELSE DATE '0001-01-01' END,
    d.dimension, {_key_id("c", "c.owner_id", dimensions)}, {_key_text("c", dimensions)},
    {", ".join(f"SUM(c.{name})" for name in (*FIGURES, "facts"))}
  FROM ({_moved_rows("o", "-")} UNION ALL {_moved_rows("n", "")}) AS c
  CROSS JOIN {PG_PERIODS} CROSS JOIN {_pg_dimensions(dimensions)}
  GROUP BY 1, 2, 3, 4, 5, 6;
  RETURN NULL;
END
$$;"""


PG_MACHINE_FUNCTION = (
    pg_machine_function(DIMENSIONS)
    + """
CREATE TRIGGER usage_rollup_machine_moved AFTER UPDATE ON usage_machine
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_machine_moved();
"""
)
PG_MACHINE_DROP = """
DROP TRIGGER IF EXISTS usage_rollup_machine_moved ON usage_machine;
DROP FUNCTION IF EXISTS usage_rollup_machine_moved();
"""


def _sqlite_moved(row: str, sign: str, dimensions) -> str:
    figures = ", ".join(f"{sign}SUM(f.{name})" for name in FIGURES)
    assign = ", ".join(f"{name} = {name} + excluded.{name}" for name in (*FIGURES, "facts"))
    key_id = _key_id("f", f"{row}.owner_id", dimensions)
    return f"""
  INSERT INTO usage_usagerollup ({COLUMNS})
  SELECT {row}.team_id, p.period,
    CASE p.period WHEN 'day' THEN f.day WHEN 'month' THEN substr(f.day, 1, 8) || '01'
      ELSE '0001-01-01' END AS start,
    d.dimension, {key_id} AS key_id, {_key_text("f", dimensions)} AS key_text, {figures}, {sign}COUNT(*)
  FROM usage_dailyusage f, {SQLITE_PERIODS}, {_sqlite_dimensions(dimensions)}
  WHERE f.machine_id = {row}.id
  GROUP BY p.period, start, d.dimension, key_id, key_text
  ON CONFLICT (team_id, dimension, period, day, key_id, key_text) DO UPDATE SET {assign};"""


def sqlite_machine_trigger(dimensions) -> str:
    """SQLite's trigger that moves a moved machine's sums for `dimensions`."""
    return (
        "CREATE TRIGGER usage_rollup_machine_moved AFTER UPDATE OF team_id, owner_id "
        "ON usage_machine WHEN OLD.team_id IS NOT NEW.team_id OR OLD.owner_id IS NOT NEW.owner_id "
        f"BEGIN{_sqlite_moved('OLD', '-', dimensions)}{_sqlite_moved('NEW', '', dimensions)}"
        f"{SQLITE_EMPTY}\nEND;"
    )


SQLITE_MACHINE_TRIGGER = sqlite_machine_trigger(DIMENSIONS)


# A session id stored for a second machine of a team is recorded as copied (CopiedSession).
PG_SESSION_FUNCTION = """
CREATE OR REPLACE FUNCTION usage_copied_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO usage_copiedsession (team_id, session_id, found_at)
  SELECT DISTINCT m.team_id, n.session_id, now()
  FROM new_rows n JOIN usage_machine m ON m.id = n.machine_id
  WHERE EXISTS (
    SELECT 1 FROM usage_sessionusage o JOIN usage_machine om ON om.id = o.machine_id
    WHERE o.session_id = n.session_id AND o.machine_id <> n.machine_id
      AND om.team_id = m.team_id)
  ON CONFLICT (team_id, session_id) DO NOTHING;
  RETURN NULL;
END
$$;
CREATE TRIGGER usage_copied_sessions AFTER INSERT ON usage_sessionusage
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_copied_sessions();
"""
PG_SESSION_DROP = """
DROP TRIGGER IF EXISTS usage_copied_sessions ON usage_sessionusage;
DROP FUNCTION IF EXISTS usage_copied_sessions();
"""
SQLITE_SESSION_TRIGGER = """
CREATE TRIGGER usage_copied_sessions AFTER INSERT ON usage_sessionusage BEGIN
  INSERT OR IGNORE INTO usage_copiedsession (team_id, session_id, found_at)
  SELECT m.team_id, NEW.session_id, CURRENT_TIMESTAMP FROM usage_machine m
  WHERE m.id = NEW.machine_id AND EXISTS (
    SELECT 1 FROM usage_sessionusage o JOIN usage_machine om ON om.id = o.machine_id
    WHERE o.session_id = NEW.session_id AND o.machine_id <> NEW.machine_id
      AND om.team_id = m.team_id);
END;
"""


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FUNCTION)
        schema_editor.execute(PG_MACHINE_FUNCTION)
        schema_editor.execute(PG_SESSION_FUNCTION)
    elif vendor == "sqlite":
        for sql in (*SQLITE_TRIGGERS, SQLITE_MACHINE_TRIGGER, SQLITE_SESSION_TRIGGER):
            schema_editor.execute(sql)
    else:
        raise RuntimeError(f"usage rollups have no triggers for {vendor}")


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DROP)
        schema_editor.execute(PG_MACHINE_DROP)
        schema_editor.execute(PG_SESSION_DROP)
    elif vendor == "sqlite":
        drops = (
            *SQLITE_DROP,
            "DROP TRIGGER IF EXISTS usage_rollup_machine_moved;",
            "DROP TRIGGER IF EXISTS usage_copied_sessions;",
        )
        for sql in drops:
            schema_editor.execute(sql)


def _group_keys(*columns: str) -> str:
    """The GROUP BY tail of a rebuild's columns (PostgreSQL refuses constants there)."""
    return "".join(f", {c}" for c in columns if "." in c)


def record_copied_sessions(apps, schema_editor):
    """Session ids already stored for two or more machines of a team."""
    schema_editor.execute(
        "INSERT INTO usage_copiedsession (team_id, session_id, found_at) "
        "SELECT m.team_id, s.session_id, CURRENT_TIMESTAMP FROM usage_sessionusage s "
        "JOIN usage_machine m ON m.id = s.machine_id GROUP BY m.team_id, s.session_id "
        "HAVING COUNT(DISTINCT s.machine_id) > 1"
    )


# Each dimension's key over a fact f of a machine m: (key_id, key_text) as SQL.
KEYS = {
    "machine": ("f.machine_id", "f.source"),
    "member": ("m.owner_id", "f.source"),
    "team": ("0", "''"),
    "project": ("f.project_id", "''"),
    "model": ("0", "f.model"),
    "source": ("0", "f.source"),
}


def sum_facts(schema_editor, keys: dict[str, tuple[str, str]]) -> None:
    """The rollup rows of `keys`' dimensions ({dimension: (key_id, key_text) SQL}) for the
    facts stored now: day rows from the facts, month rows from the day rows, all-time rows
    from the month rows (usage.rollups.rebuild, frozen)."""
    month = (
        "CAST(date_trunc('month', day) AS date)"
        if schema_editor.connection.vendor == "postgresql"
        else "substr(day, 1, 8) || '01'"
    )
    sums = ", ".join(f"SUM(f.{name})" for name in FIGURES)
    for dimension, (key_id, key_text) in keys.items():
        schema_editor.execute(
            f"INSERT INTO usage_usagerollup ({COLUMNS}) "
            f"SELECT m.team_id, 'day', f.day, '{dimension}', {key_id}, {key_text}, {sums}, "
            "COUNT(*) FROM usage_dailyusage f JOIN usage_machine m ON m.id = f.machine_id "
            f"GROUP BY m.team_id, f.day{_group_keys(key_id, key_text)}"
        )
    dimensions = ", ".join(f"'{d}'" for d in keys)
    schema_editor.execute(
        f"INSERT INTO usage_usagerollup ({COLUMNS}) "
        f"SELECT team_id, 'month', {month}, dimension, key_id, key_text, "
        + ", ".join(f"SUM({name})" for name in (*FIGURES, "facts"))
        + f" FROM usage_usagerollup WHERE period = 'day' AND dimension IN ({dimensions}) "
        f"GROUP BY team_id, {month}, dimension, key_id, key_text"
    )
    schema_editor.execute(
        f"INSERT INTO usage_usagerollup ({COLUMNS}) "
        "SELECT team_id, 'all', '0001-01-01', dimension, key_id, key_text, "
        + ", ".join(f"SUM({name})" for name in (*FIGURES, "facts"))
        + f" FROM usage_usagerollup WHERE period = 'month' AND dimension IN ({dimensions}) "
        "GROUP BY team_id, dimension, key_id, key_text"
    )


def sum_existing_facts(apps, schema_editor):
    """The rollups of the facts stored before this migration."""
    sum_facts(schema_editor, KEYS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_loginlink_code_hash"),
        ("usage", "0014_productivity"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageRollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("input_tokens", models.BigIntegerField(default=0)),
                ("output_tokens", models.BigIntegerField(default=0)),
                ("cache_creation_tokens", models.BigIntegerField(default=0)),
                ("cache_read_tokens", models.BigIntegerField(default=0)),
                ("total_tokens", models.BigIntegerField(default=0)),
                (
                    "cost_usd",
                    models.DecimalField(decimal_places=10, default=Decimal("0"), max_digits=20),
                ),
                (
                    "period",
                    models.CharField(
                        choices=[("day", "Day"), ("month", "Month"), ("all", "All time")],
                        max_length=5,
                    ),
                ),
                ("day", models.DateField()),
                (
                    "dimension",
                    models.CharField(
                        choices=[
                            ("team", "The whole team"),
                            (
                                "member",
                                "One member and source agent (key_id: the user's id, key_text: the source)",
                            ),
                            (
                                "machine",
                                "One machine and source agent (key_id: its id, key_text: the source)",
                            ),
                            ("project", "One project (key_id: its id)"),
                            ("model", "One model (key_text)"),
                            ("source", "One source agent (key_text)"),
                        ],
                        max_length=10,
                    ),
                ),
                ("key_id", models.BigIntegerField(default=0)),
                ("key_text", models.CharField(blank=True, default="", max_length=200)),
                ("facts", models.IntegerField(default=0)),
                (
                    "team",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="accounts.team",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["dimension", "key_id", "period", "day"], name="usagerollup_key_day"
                    ),
                    models.Index(
                        condition=models.Q(("facts", 0)), fields=["team"], name="usagerollup_empty"
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("team", "dimension", "period", "day", "key_id", "key_text"),
                        name="usagerollup_key",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="UsageRollupDelta",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("input_tokens", models.BigIntegerField(default=0)),
                ("output_tokens", models.BigIntegerField(default=0)),
                ("cache_creation_tokens", models.BigIntegerField(default=0)),
                ("cache_read_tokens", models.BigIntegerField(default=0)),
                ("total_tokens", models.BigIntegerField(default=0)),
                (
                    "cost_usd",
                    models.DecimalField(decimal_places=10, default=Decimal("0"), max_digits=20),
                ),
                (
                    "period",
                    models.CharField(
                        choices=[("day", "Day"), ("month", "Month"), ("all", "All time")],
                        max_length=5,
                    ),
                ),
                ("day", models.DateField()),
                (
                    "dimension",
                    models.CharField(
                        choices=[
                            ("team", "The whole team"),
                            (
                                "member",
                                "One member and source agent (key_id: the user's id, key_text: the source)",
                            ),
                            (
                                "machine",
                                "One machine and source agent (key_id: its id, key_text: the source)",
                            ),
                            ("project", "One project (key_id: its id)"),
                            ("model", "One model (key_text)"),
                            ("source", "One source agent (key_text)"),
                        ],
                        max_length=10,
                    ),
                ),
                ("key_id", models.BigIntegerField(default=0)),
                ("key_text", models.CharField(blank=True, default="", max_length=200)),
                ("facts", models.IntegerField(default=0)),
                (
                    "team",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="accounts.team",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["team", "dimension", "period", "day"], name="usagerollupdelta_team"
                    ),
                    models.Index(fields=["dimension", "key_id"], name="usagerollupdelta_key"),
                ],
            },
        ),
        migrations.CreateModel(
            name="CopiedSession",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("session_id", models.CharField(max_length=200)),
                ("found_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "team",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.team",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("team", "session_id"), name="copiedsession_key")
                ],
            },
        ),
        migrations.AddIndex(
            model_name="dailyusage",
            index=models.Index(
                condition=models.Q(
                    ("priced_by_server", True),
                    models.Q(("cost_usd", 0), ("total_tokens__gt", 0)),
                    _connector="OR",
                ),
                fields=["machine", "day"],
                name="dailyusage_unpriced",
            ),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
        migrations.RunPython(record_copied_sessions, migrations.RunPython.noop),
        migrations.RunPython(sum_existing_facts, migrations.RunPython.noop),
    ]
