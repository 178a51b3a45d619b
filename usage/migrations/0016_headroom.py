"""The latest reading of each quota window per subscription (LatestQuotaReading), so a team's
accounts are ranked by closeness to a limit in SQL; existing readings are stored once here, by
the rules of usage.analytics.ratelimits (copied: a migration must not change with the app)."""

from datetime import UTC, datetime, timedelta

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

WINDOW_LENGTH = {"five_hour": timedelta(hours=5), "seven_day": timedelta(days=7)}


def _parse_reset(value):
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _row(model, subscription_id, snapshot, window, pct, resets_at):
    if pct is None:
        return None
    try:
        used = float(pct)
    except (TypeError, ValueError):
        return None
    length = WINDOW_LENGTH.get(window, WINDOW_LENGTH["seven_day"])
    return model(
        subscription_id=subscription_id,
        window=window,
        snapshot_id=snapshot.pk,
        used_pct=used,
        resets_at=resets_at,
        captured_at=snapshot.captured_at,
        stale_at=resets_at if resets_at is not None else snapshot.captured_at + length,
    )


def store_latest_readings(apps, schema_editor):
    Subscription = apps.get_model("usage", "Subscription")
    Snapshot = apps.get_model("usage", "RateLimitSnapshot")
    Latest = apps.get_model("usage", "LatestQuotaReading")
    latest = Snapshot.objects.filter(subscription=OuterRef("pk")).order_by("-captured_at", "-pk")
    wanted = Subscription.objects.annotate(
        five_pk=Subquery(latest.filter(five_hour_used_pct__isnull=False).values("pk")[:1]),
        seven_pk=Subquery(latest.filter(seven_day_used_pct__isnull=False).values("pk")[:1]),
        extra_pk=Subquery(latest.exclude(extra_windows={}).values("pk")[:1]),
    ).values_list("pk", "five_pk", "seven_pk", "extra_pk")
    triples = [row for row in wanted if any(row[1:])]
    pks = {pk for row in triples for pk in row[1:] if pk}
    snapshots = Snapshot.objects.in_bulk(pks)
    rows = []
    for subscription_id, five_pk, seven_pk, extra_pk in triples:
        if five_pk:
            s = snapshots[five_pk]
            rows.append(
                _row(
                    Latest,
                    subscription_id,
                    s,
                    "five_hour",
                    s.five_hour_used_pct,
                    s.five_hour_resets_at,
                )
            )
        if seven_pk:
            s = snapshots[seven_pk]
            rows.append(
                _row(
                    Latest,
                    subscription_id,
                    s,
                    "seven_day",
                    s.seven_day_used_pct,
                    s.seven_day_resets_at,
                )
            )
        if extra_pk:
            s = snapshots[extra_pk]
            for name, data in sorted((s.extra_windows or {}).items()):
                if isinstance(data, dict):
                    rows.append(
                        _row(
                            Latest,
                            subscription_id,
                            s,
                            name,
                            data.get("used_percentage"),
                            _parse_reset(data.get("resets_at")),
                        )
                    )
    Latest.objects.bulk_create([row for row in rows if row is not None], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0015_usage_rollups"),
    ]

    operations = [
        migrations.CreateModel(
            name="LatestQuotaReading",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("window", models.CharField(max_length=40)),
                ("used_pct", models.FloatField()),
                ("resets_at", models.DateTimeField(null=True)),
                ("captured_at", models.DateTimeField()),
                ("stale_at", models.DateTimeField()),
                (
                    "snapshot",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="usage.ratelimitsnapshot",
                    ),
                ),
                (
                    "subscription",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="latest_quota_readings",
                        to="usage.subscription",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("subscription", "window"),
                        name="latestquotareading_one_per_window",
                    )
                ],
                "indexes": [
                    models.Index(
                        condition=models.Q(snapshot__isnull=True),
                        fields=["subscription"],
                        name="latestquotareading_orphaned",
                    )
                ],
            },
        ),
        migrations.RunPython(store_latest_readings, migrations.RunPython.noop),
    ]
