"""Budgets, notification channels, alerts and their deliveries.

An `Alert` row is the dedupe key of everything this app sends: each kind has a partial unique
constraint, so "exactly once per budget, period and threshold" (or per quota window, or per
silence of a machine) is enforced by the database, not by application checks.
"""

import base64
import secrets
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from accounts.access import is_team_admin, team_of, visible_member_ids
from accounts.models import Team

DEFAULT_THRESHOLDS = [90, 100]
DEFAULT_QUOTA_THRESHOLD = 90
DEFAULT_STALE_AGENT_HOURS = 24
SECRET_PREFIX = "whsec_"


MAX_THRESHOLDS = 10


def default_thresholds() -> list[int]:
    return list(DEFAULT_THRESHOLDS)


def validate_thresholds(value) -> None:
    """A list of whole percentages from 1 to 1000 (the Django admin edits it as JSON)."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Give a list of percentages, e.g. [90, 100].")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 1000:
            raise ValidationError(f"{item!r} is not a whole percentage from 1 to 1000.")
    if len(set(value)) > MAX_THRESHOLDS:
        raise ValidationError(f"At most {MAX_THRESHOLDS} thresholds.")


def generate_secret() -> str:
    """A Standard Webhooks secret: `whsec_` then base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class ScopeKind(models.TextChoices):
    TEAM = "team", "Whole team"
    MEMBER = "member", "One member"
    PROJECT = "project", "One project"


class Period(models.TextChoices):
    MONTH = "month", "Calendar month"
    WEEK = "week", "Week (Monday to Sunday)"


class Enforcement(models.TextChoices):
    NOTIFY = "notify", "Alerts only"
    WARN = "warn", "Warn in Claude Code"
    STOP = "stop", "Warn, then stop prompts past the amount"


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """First and last day (inclusive) of the period containing `day`."""
    if period == Period.WEEK:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    start = day.replace(day=1)
    next_month = (start + timedelta(days=32)).replace(day=1)
    return start, next_month - timedelta(days=1)


def masked_url(url: str) -> str:
    """`https://hooks.slack.com/…` for `https://user:pw@hooks.slack.com/services/T0/B0/xyz`:
    scheme, host and port only; "…" stands for a path or query that was there."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "…" if url else ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    hidden = "…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}/{hidden}"


class Channel(models.Model):
    """Where alerts and reports go: an email list (members and/or addresses), a signed webhook,
    or a chat service's incoming webhook (Slack, Discord, Microsoft Teams Workflows)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook (signed JSON)"
        SLACK = "slack", "Slack"
        DISCORD = "discord", "Discord"
        TEAMS = "teams", "Microsoft Teams"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="channels")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="alert_channels"
    )
    addresses = models.JSONField(default=list, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    # Kept in the clear because the HMAC needs the secret itself; shown once on the page.
    secret = models.CharField(max_length=100, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    # Scheduled reports this channel also receives (budgets.reports).
    weekly_digest = models.BooleanField(
        default=False, help_text="Also post the team's weekly digest here."
    )
    monthly_report = models.BooleanField(
        default=False, help_text="Also post the monthly chargeback report here."
    )

    class Meta:
        ordering = ["team", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="email") | ~Q(url=""), name="channel_webhook_has_url"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def save(self, *args, **kwargs):
        if self.kind == self.Kind.WEBHOOK and not self.secret:
            self.secret = generate_secret()
        super().save(*args, **kwargs)

    @property
    def is_enabled(self) -> bool:
        return self.disabled_at is None

    @property
    def is_http(self) -> bool:
        """Sent by an HTTP POST (a signed webhook or a chat service), not by email."""
        return self.kind != self.Kind.EMAIL

    @property
    def is_chat(self) -> bool:
        return self.kind in (self.Kind.SLACK, self.Kind.DISCORD, self.Kind.TEAMS)

    @property
    def target(self) -> str:
        """Where the channel sends, for pages: the addresses, or the URL without what makes it
        a secret (a webhook's path and query are its credential, and so is any user:password)."""
        if self.is_http:
            return masked_url(self.url)
        people = [m.email for m in self.members.all()]
        return ", ".join(sorted(set(people) | set(self.addresses)))

    def recipients(self) -> list[str]:
        """Email addresses this channel sends to: chosen members plus typed addresses.

        A chosen member who has left the team or was deactivated no longer gets its alerts.
        """
        emails = {
            m.email
            for m in self.members.filter(is_active=True).select_related("membership")
            if m.team_membership is not None and m.team_membership.team_id == self.team_id
        }
        emails.update(a.strip().lower() for a in self.addresses if a.strip())
        return sorted(emails)

    def rotate_secret(self) -> str:
        self.secret = generate_secret()
        self.save(update_fields=["secret"])
        return self.secret

    def enable(self) -> None:
        Channel.objects.filter(pk=self.pk).update(
            disabled_at=None, disabled_reason="", consecutive_failures=0
        )
        self.disabled_at, self.disabled_reason, self.consecutive_failures = None, "", 0


class BudgetQuerySet(models.QuerySet):
    def visible_to(self, user) -> "BudgetQuerySet":
        """Budgets `user` may see (accounts.access): admins every budget of their team, members
        the team and project budgets and the member budgets of people whose figures they may
        see (always their own); nothing outside their own team."""
        team = team_of(user)
        if team is None:
            return self.none()
        budgets = self.filter(team=team).select_related("team", "project", "member")
        if is_team_admin(user):
            return budgets
        # Whose figures the user may see, in one query (not a lookup per member budget).
        others = visible_member_ids(user)
        return budgets.filter(
            Q(scope__in=[ScopeKind.TEAM, ScopeKind.PROJECT])
            | Q(scope=ScopeKind.MEMBER, member=user)
            | Q(scope=ScopeKind.MEMBER, member_id__in=others)
        )


class Budget(models.Model):
    """A spending limit in USD for one project, one member or the whole team, per period."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="budgets")
    name = models.CharField(max_length=120)
    scope = models.CharField(max_length=10, choices=ScopeKind.choices, default=ScopeKind.TEAM)
    project = models.ForeignKey(
        "usage.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="budgets"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="budgets",
    )
    period = models.CharField(max_length=10, choices=Period.choices, default=Period.MONTH)
    amount_usd = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    # Percentages of the amount; each fires once per period.
    thresholds = models.JSONField(default=default_thresholds, validators=[validate_thresholds])
    forecast_alerts = models.BooleanField(
        default=True,
        help_text="Also alert once per period when the pace says the amount will be exceeded.",
    )
    channels = models.ManyToManyField(Channel, blank=True, related_name="budgets")
    active = models.BooleanField(default=True)
    # What Claude Code does at the thresholds (budgets.enforcement); issue 18.
    enforcement = models.CharField(
        max_length=10, choices=Enforcement.choices, default=Enforcement.NOTIFY
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = BudgetQuerySet.as_manager()

    class Meta:
        ordering = ["team", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(scope="team", project__isnull=True, member__isnull=True)
                    | Q(scope="member", project__isnull=True, member__isnull=False)
                    | Q(scope="project", project__isnull=False, member__isnull=True)
                ),
                name="budget_scope_matches_target",
            ),
            models.CheckConstraint(condition=Q(amount_usd__gt=0), name="budget_amount_positive"),
        ]
        indexes = [
            # Evaluation walks a team's active budgets after every ingest.
            models.Index(fields=["team", "active"], name="budget_team_active"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def scope_label(self) -> str:
        if self.scope == ScopeKind.PROJECT and self.project is not None:
            return f"Project {self.project.display_name}"
        if self.scope == ScopeKind.MEMBER and self.member is not None:
            return f"Member {self.member.display_name}"
        return "Whole team"

    @property
    def sorted_thresholds(self) -> list[int]:
        # Values that slipped past validation (a raw SQL edit) are skipped, not fatal.
        values = self.thresholds if isinstance(self.thresholds, list) else []
        return sorted({t for t in values if isinstance(t, int) and not isinstance(t, bool)})

    def current_period(self, now: datetime | None = None) -> tuple[date, date]:
        return period_bounds(self.period, self.team.today(now))

    def usage_filter(self) -> Q:
        """DailyUsage rows this budget counts (any source agent, any model)."""
        if self.scope == ScopeKind.PROJECT:
            return Q(project_id=self.project_id) | Q(project__alias_of_id=self.project_id)
        if self.scope == ScopeKind.MEMBER:
            return Q(machine__team_id=self.team_id, machine__owner_id=self.member_id)
        return Q(machine__team_id=self.team_id)


class AlertKind(models.TextChoices):
    THRESHOLD = "threshold", "Budget threshold crossed"
    FORECAST = "forecast", "Budget forecast to be exceeded"
    QUOTA = "quota", "Subscription quota nearly used"
    STALE_AGENT = "stale_agent", "Agent not syncing"
    TEST = "test", "Test message"
    # A scheduled report going out (budgets.reports); its Report row is the dedupe key.
    REPORT = "report", "Scheduled report"


class Alert(models.Model):
    """One fired alert. Its unique constraints make each alert fire exactly once."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    budget = models.ForeignKey(
        Budget, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    period_start = models.DateField(null=True, blank=True)
    # Budget thresholds and quota thresholds are whole percentages.
    threshold = models.PositiveIntegerField(null=True, blank=True)
    subscription = models.ForeignKey(
        "usage.Subscription", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    window = models.CharField(max_length=40, blank=True)
    window_resets_at = models.DateTimeField(null=True, blank=True)
    machine = models.ForeignKey(
        "usage.Machine", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    machine_last_seen_at = models.DateTimeField(null=True, blank=True)
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.CASCADE, related_name="test_alerts"
    )
    report = models.OneToOneField(
        "Report", null=True, blank=True, on_delete=models.CASCADE, related_name="alert"
    )
    # The figures at the moment it fired (amounts as strings), so messages tell what was seen.
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The dedupe keys. Each kind's key columns are NOT NULL (checked below), because
            # NULLs never collide in a unique index.
            models.UniqueConstraint(
                fields=["budget", "period_start", "threshold"],
                condition=Q(kind="threshold"),
                name="alert_threshold_once_per_period",
            ),
            models.UniqueConstraint(
                fields=["budget", "period_start"],
                condition=Q(kind="forecast"),
                name="alert_forecast_once_per_period",
            ),
            models.UniqueConstraint(
                fields=["subscription", "window", "window_resets_at"],
                condition=Q(kind="quota"),
                name="alert_quota_once_per_window",
            ),
            models.UniqueConstraint(
                fields=["machine", "machine_last_seen_at"],
                condition=Q(kind="stale_agent"),
                name="alert_stale_once_per_silence",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["threshold", "forecast"])
                | Q(budget__isnull=False, period_start__isnull=False),
                name="alert_budget_key_not_null",
            ),
            models.CheckConstraint(
                condition=~Q(kind="threshold") | Q(threshold__isnull=False),
                name="alert_threshold_not_null",
            ),
            models.CheckConstraint(
                condition=~Q(kind="quota")
                | Q(subscription__isnull=False, window_resets_at__isnull=False) & ~Q(window=""),
                name="alert_quota_key_not_null",
            ),
            models.CheckConstraint(
                condition=~Q(kind="stale_agent")
                | Q(machine__isnull=False, machine_last_seen_at__isnull=False),
                name="alert_stale_key_not_null",
            ),
            models.CheckConstraint(
                condition=~Q(kind="report") | Q(report__isnull=False),
                name="alert_report_key_not_null",
            ),
        ]
        indexes = [
            # The budgets page lists a team's recent alerts.
            models.Index(fields=["team", "-created_at"], name="alert_team_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M}"


class Delivery(models.Model):
    """One alert sent through one channel (or straight to one person by email).

    Workers claim a row with a conditional UPDATE (pending → sending) and only the worker whose
    update changed one row sends, so two workers never send the same delivery.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    # Personal alerts (quota, stale agent) go to one person's email, without a team channel.
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_deliveries",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=dj_timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "channel"],
                condition=Q(channel__isnull=False),
                name="delivery_once_per_channel",
            ),
            models.UniqueConstraint(
                fields=["alert", "recipient"],
                condition=Q(recipient__isnull=False),
                name="delivery_once_per_recipient",
            ),
            models.CheckConstraint(
                condition=Q(channel__isnull=False, recipient__isnull=True)
                | Q(channel__isnull=True, recipient__isnull=False),
                name="delivery_has_one_target",
            ),
        ]
        indexes = [
            # The sweep finds due pending rows and stuck sending rows.
            models.Index(fields=["status", "next_attempt_at"], name="delivery_status_due"),
        ]

    def __str__(self) -> str:
        target = self.channel or self.recipient
        return f"{self.alert} → {target} ({self.status})"


class QuotaAlertSetting(models.Model):
    """A member's choice for one of their subscriptions: alert at this % of a quota window."""

    subscription = models.OneToOneField(
        "usage.Subscription", on_delete=models.CASCADE, related_name="quota_alert_setting"
    )
    enabled = models.BooleanField(default=True)
    threshold = models.PositiveIntegerField(
        default=DEFAULT_QUOTA_THRESHOLD, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(threshold__gte=1, threshold__lte=100),
                name="quotaalertsetting_threshold_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription}: {self.threshold}%"


class StaleAgentSetting(models.Model):
    """A member's choice: tell me when one of my machines has not synced for this long."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stale_agent_setting"
    )
    enabled = models.BooleanField(default=True)
    hours = models.PositiveIntegerField(
        default=DEFAULT_STALE_AGENT_HOURS,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(hours__gte=1), name="staleagentsetting_hours_min"),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.hours} h"


# --- scheduled reports (issue 17) ------------------------------------------------------------


class ReportKind(models.TextChoices):
    WEEKLY_DIGEST = "weekly_digest", "Weekly digest"
    MONTHLY_CHARGEBACK = "monthly_chargeback", "Monthly chargeback report"


class Report(models.Model):
    """One scheduled report of one team for one period (team days, inclusive).

    The unique constraint makes each report go out once per period however often beat runs;
    `data` holds the figures computed when it was made, so every recipient and every retry
    reads the same numbers.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="reports")
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    period_start = models.DateField()
    period_end = models.DateField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["-period_start", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "kind", "period_start"], name="report_once_per_period"
            ),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")),
                name="report_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.period_start} to {self.period_end}"


class ReportSetting(models.Model):
    """A person's choice of scheduled reports by email. Empty (None) means the default of
    their role: admins get both reports, members neither (they opt in)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_setting"
    )
    weekly_digest = models.BooleanField(null=True, blank=True)
    monthly_report = models.BooleanField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"reports of {self.user}"


# --- enforcement in Claude Code (issue 18) ----------------------------------------------------


class QuotaWindow(models.TextChoices):
    FIVE_HOUR = "five_hour", "5-hour quota"
    SEVEN_DAY = "seven_day", "Weekly quota"


class QuotaEnforcement(models.Model):
    """The team's warn and stop levels (percent used) for every member's official quota windows.

    Empty levels mean no notice; a stop level refuses prompts until the window resets.
    """

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="quota_enforcement")
    five_hour_warn_at = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    five_hour_stop_at = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    seven_day_warn_at = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    seven_day_stop_at = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"quota levels of {self.team}"

    def levels(self, window: str) -> tuple[int | None, int | None]:
        """(warn at, stop at) in percent for `window` (a QuotaWindow value)."""
        return getattr(self, f"{window}_warn_at"), getattr(self, f"{window}_stop_at")


class EnforcementExemption(models.Model):
    """An admin's lift of stops: for one member or everyone, one budget or all, until a time.

    Warnings are still shown; only the refusal of prompts is lifted.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="exemptions")
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    budget = models.ForeignKey(
        Budget, null=True, blank=True, on_delete=models.CASCADE, related_name="exemptions"
    )
    until = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        who = self.member.email if self.member else "everyone"
        return f"{who}: {self.budget or 'all limits'} until {self.until or 'removed'}"


class EnforcementEvent(models.Model):
    """One warning or stop the server told a member's agent about (once per subject, period,
    level and threshold), or one prompt the member's hook refused (once per `client_id`, the
    agent's id of that refusal, so a resent report counts once). The subject is
    `budget:<uuid>` or `quota:<window>`."""

    class Kind(models.TextChoices):
        WARN = "warn", "Warning"
        STOP = "stop", "Stop"
        REFUSED = "refused", "Prompt refused"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="enforcement_events")
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enforcement_events"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    subject = models.CharField(max_length=80)
    label = models.CharField(max_length=200)
    period_key = models.CharField(max_length=40)
    threshold = models.PositiveIntegerField()
    # The figures the member was shown: spent and cap (USD strings) or percent used.
    data = models.JSONField(default=dict, blank=True)
    exempt = models.BooleanField(default=False)
    # Refusals only: the agent's random id of the refused prompt (the dedupe key).
    client_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The status endpoint records on every recompute; this keeps one row per crossing.
            models.UniqueConstraint(
                fields=["member", "subject", "period_key", "kind", "threshold"],
                condition=Q(kind__in=["warn", "stop"]),
                name="enforcementevent_once_per_period",
            ),
            # Agents resend a batch whose answer they did not get; each refusal counts once.
            models.UniqueConstraint(
                fields=["member", "client_id"],
                condition=Q(kind="refused"),
                name="enforcementevent_refusal_once",
            ),
            models.CheckConstraint(
                condition=~Q(kind="refused") | Q(client_id__isnull=False),
                name="enforcementevent_refusal_has_id",
            ),
        ]
        indexes = [
            # The budgets page lists a team's recent events.
            models.Index(fields=["team", "-created_at"], name="enforcementevent_team_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.label} for {self.member_id}"
