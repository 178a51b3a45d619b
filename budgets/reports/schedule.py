"""What is due and who gets it: each report once per team, kind and period.

Beat runs `send_due_reports` every hour (telemetry_site.settings). A weekly digest covers the
last complete Monday-to-Sunday of the team's calendar and is due from REPORTS_SEND_HOUR on
Monday, team time; the monthly chargeback covers the last complete calendar month and is due
from that hour on the 1st. A period missed while the server was down is sent at the next run
within the following period; older ones are not sent late.

Exactly once: the Report row's unique (team, kind, period_start) is inserted in a savepoint
before any delivery exists, so a second beat run, or a concurrent worker, gets an
IntegrityError and sends nothing.
"""

import logging
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.access import sees_other_members
from accounts.models import Membership, Team
from budgets import notify
from budgets.models import Alert, AlertKind, Channel, Delivery, Report, ReportKind, ReportSetting
from budgets.reports import figures

log = logging.getLogger(__name__)


def send_hour() -> int:
    """The team-local hour from which a period's report is due (default 7, i.e. 07:00)."""
    return int(getattr(settings, "REPORTS_SEND_HOUR", 7))


def last_week(day: date) -> tuple[date, date]:
    """The Monday-to-Sunday week before the one containing `day`."""
    monday = day - timedelta(days=day.weekday())
    return monday - timedelta(days=7), monday - timedelta(days=1)


def last_month(day: date) -> tuple[date, date]:
    """The calendar month before the one containing `day`."""
    end = day.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def due_periods(team: Team, now: datetime) -> list[tuple[str, date, date]]:
    """(kind, first day, last day) of the reports due for `team` at `now` (sent or not)."""
    local = now.astimezone(team.zone)
    # Before the send hour the newest complete period is still the one before.
    day = local.date() if local.hour >= send_hour() else local.date() - timedelta(days=1)
    created = team.created_at.astimezone(team.zone).date() if team.created_at else None
    due = []
    for kind, (start, end) in (
        (ReportKind.WEEKLY_DIGEST, last_week(day)),
        (ReportKind.MONTHLY_CHARGEBACK, last_month(day)),
    ):
        # A team made after the period ended has nothing to say about it.
        if created is None or created <= end:
            due.append((kind.value, start, end))
    return due


def may_receive(membership: Membership, kind: str) -> bool:
    """May this member get `kind` by email at all? The chargeback names every member, so only
    people who may see others' figures (accounts.access.sees_other_members) get it."""
    return kind != ReportKind.MONTHLY_CHARGEBACK or sees_other_members(membership.user)


def wants(membership: Membership, setting: ReportSetting | None, kind: str) -> bool:
    """Does this member get `kind` by email? Their choice, else admins yes and members no."""
    if not may_receive(membership, kind):
        return False
    field = "weekly_digest" if kind == ReportKind.WEEKLY_DIGEST else "monthly_report"
    choice = getattr(setting, field, None) if setting is not None else None
    return bool(membership.is_admin if choice is None else choice)


def recipients(team: Team, kind: str) -> list:
    """Active members of `team` who get `kind` by email."""
    memberships = Membership.objects.filter(team=team, user__is_active=True).select_related(
        "user", "team"
    )
    settings_by_user = {
        s.user_id: s for s in ReportSetting.objects.filter(user__membership__team=team)
    }
    return [m.user for m in memberships if wants(m, settings_by_user.get(m.user_id), kind)]


def report_channels(team: Team, kind: str) -> list[Channel]:
    flag = "weekly_digest" if kind == ReportKind.WEEKLY_DIGEST else "monthly_report"
    return list(
        Channel.objects.filter(team=team, disabled_at__isnull=True, **{flag: True}).order_by("pk")
    )


def emailed_by_channels(channels: list[Channel]) -> set[str]:
    """Lower-cased addresses the email channels among `channels` reach (their members and
    typed addresses): a person there gets the report once, from the channel."""
    covered: set[str] = set()
    for channel in channels:
        if channel.kind != Channel.Kind.EMAIL:
            continue
        covered.update(email.lower() for email in channel.members.values_list("email", flat=True))
        covered.update(str(address).lower() for address in channel.addresses)
    return covered


def compute(team: Team, kind: str, start: date, end: date, now: datetime) -> dict:
    if kind == ReportKind.WEEKLY_DIGEST:
        return figures.weekly_digest(team, start, end, now)
    return figures.chargeback(team, start, end)


def make_report(
    team: Team, kind: str, start: date, end: date, now: datetime | None = None
) -> Report | None:
    """Create the report of this period and its deliveries; None if it exists already."""
    now = now or timezone.now()
    if Report.objects.filter(team=team, kind=kind, period_start=start).exists():
        return None
    data = compute(team, kind, start, end, now)
    with transaction.atomic():
        try:
            with transaction.atomic():
                report = Report.objects.create(
                    team=team,
                    kind=kind,
                    period_start=start,
                    period_end=end,
                    data=data,
                    created_at=now,
                )
        except IntegrityError:
            return None  # another run made it between the check and the insert
        alert = Alert.objects.create(
            team=team,
            kind=AlertKind.REPORT,
            report=report,
            data={"report": kind, "period_start": start.isoformat(), "period_end": end.isoformat()},
            created_at=now,
        )
        channels = report_channels(team, kind)
        covered = emailed_by_channels(channels)
        rows = [
            Delivery(alert=alert, recipient=user)
            for user in recipients(team, kind)
            if user.email.lower() not in covered
        ]
        rows += [Delivery(alert=alert, channel=c) for c in channels]
        Delivery.objects.bulk_create(rows)
        ids = list(Delivery.objects.filter(alert=alert).values_list("pk", flat=True))
        notify.queue_on_commit(ids)
    log.info(
        "report made",
        extra={"team": team.pk, "kind": kind, "period": start.isoformat(), "deliveries": len(ids)},
    )
    return report


def send_due_reports(now: datetime | None = None) -> int:
    """Beat's hourly pass over every team; returns how many reports were made."""
    now = now or timezone.now()
    made = 0
    for team in Team.objects.all():
        for kind, start, end in due_periods(team, now):
            try:
                if make_report(team, kind, start, end, now) is not None:
                    made += 1
            except Exception:
                # One team's broken data must not stop the others' reports.
                log.exception("making a report failed", extra={"team": team.pk, "kind": kind})
    return made
