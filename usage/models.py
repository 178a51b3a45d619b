"""Machines, subscriptions, projects, the raw ingest archive, usage facts and derived blocks.

Facts (daily, hourly, session) each have a NOT NULL natural key and are replaced, never
added to, by the newest report: re-sending a report never double counts.
"""

import gzip
import re
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from accounts.models import Team


class Plan(models.TextChoices):
    PRO = "pro", "Pro"
    MAX5X = "max5x", "Max 5x"
    MAX20X = "max20x", "Max 20x"
    TEAM = "team", "Team"
    ENTERPRISE = "enterprise", "Enterprise"
    API = "api", "API (pay as you go)"
    CUSTOM = "custom", "Custom price"


class PlanPrice(models.Model):
    """The one table of plan prices; admins edit it in the Django admin."""

    plan = models.CharField(max_length=20, choices=Plan.choices, unique=True)
    monthly_usd = models.DecimalField(max_digits=10, decimal_places=2)
    # Relative usage allowance versus Pro, used to suggest the cheapest plan that would fit.
    capacity_vs_pro = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("1"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["monthly_usd"]

    def __str__(self) -> str:
        return f"{self.get_plan_display()}: ${self.monthly_usd}/month"


class SubscriptionQuerySet(models.QuerySet):
    def visible_to(self, viewer) -> "SubscriptionQuerySet":
        """Subscriptions whose figures `viewer` (an accounts.access.Viewer) may see."""
        return self.filter(viewer.owner_q())


class Subscription(models.Model):
    """A Claude account. Rate limits and 5-hour blocks are per subscription, across machines."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions"
    )
    label = models.CharField(max_length=100)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.MAX5X)
    # Only for plan=custom (or to override the price table for this one account).
    monthly_price_usd = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["owner", "label"]
        constraints = [
            # Ingest attaches new machines to the owner's single default subscription.
            models.UniqueConstraint(
                fields=["owner"],
                condition=models.Q(is_default=True),
                name="subscription_one_default_per_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_plan_display()})"

    @classmethod
    def default_for(cls, user) -> "Subscription":
        sub = cls.objects.filter(owner=user, is_default=True).first()
        if sub is None:
            sub, _ = cls.objects.get_or_create(
                owner=user, is_default=True, defaults={"label": "Claude account"}
            )
        return sub


class MachineQuerySet(models.QuerySet):
    def visible_to(self, viewer) -> "MachineQuerySet":
        """Machines `viewer` (an accounts.access.Viewer) may see one by one: the whole team's
        for those who see other members, else their own (as usage.queries.machines_for)."""
        if viewer.sees_others and viewer.team is not None:
            return self.filter(team=viewer.team)
        return self.filter(owner=viewer.user)


# How recently a machine must have synced to count as online, or idle rather than offline.
ONLINE_WITHIN = timedelta(minutes=20)
IDLE_WITHIN = timedelta(days=1)


class Machine(models.Model):
    uuid = models.UUIDField(unique=True, help_text="Generated once by the agent on this PC.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="machines"
    )
    # Denormalised from the owner so team queries need no join through memberships.
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="machines")
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="machines"
    )
    name = models.CharField(max_length=100)
    hostname = models.CharField(max_length=255, blank=True)
    os = models.CharField(max_length=100, blank=True)
    agent_version = models.CharField(max_length=40, blank=True)
    ccusage_version = models.CharField(max_length=40, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    first_seen_at = models.DateTimeField(default=dj_timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_sync_status = models.CharField(max_length=20, blank=True)
    last_sync_error = models.TextField(blank=True)
    last_sync_counts = models.JSONField(default=dict, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    # Data quality: the machine's report lost days it had sent before (logs cleaned up).
    lost_history_at = models.DateTimeField(null=True, blank=True)
    lost_history_days = models.JSONField(default=list, blank=True)

    objects = MachineQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["team", "owner"], name="machine_team_owner"),
            # The stale-agent sweep scans by last seen.
            models.Index(fields=["last_seen_at"], name="machine_last_seen"),
        ]

    def __str__(self) -> str:
        return self.name

    def status(self, now: datetime | None = None) -> str:
        """online (seen under 20 minutes ago), idle (under a day), offline, or retired."""
        if self.retired_at is not None:
            return "retired"
        if self.last_seen_at is None:
            return "offline"
        age = (now or dj_timezone.now()) - self.last_seen_at
        if age < ONLINE_WITHIN:
            return "online"
        if age < IDLE_WITHIN:
            return "idle"
        return "offline"


_PATH_SEGMENT = re.compile(r"[^-]+")


def readable_project_name(key: str) -> str:
    """`-home-dev-src-webapp` → `webapp`; ccusage replaces every `/` (and `.`) by `-`."""
    if not key:
        return "(no project)"
    stripped = key.strip("-")
    if not stripped:
        return key
    return stripped.rsplit("-", 1)[-1] if "-" in stripped else stripped


class Project(models.Model):
    """A ccusage project (its encoded working directory), per team; aliases merge clones."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="projects")
    # The empty key collects usage that no project is known for (other agents' daily rows).
    key = models.CharField(max_length=500, blank=True)
    display_name = models.CharField(max_length=200)
    alias_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="aliases"
    )
    cwd = models.CharField(max_length=1000, blank=True)
    git_remote = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["display_name"]
        constraints = [
            # Ingest finds or creates a project by (team, key).
            models.UniqueConstraint(fields=["team", "key"], name="project_team_key"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def canonical(self) -> "Project":
        return self.alias_of or self

    def set_alias(self, target: "Project | None") -> None:
        """Group this project under `target` (None ungroups it); chains are never built.

        Every view groups by the canonical project, so aliases must point at a project that
        is not itself an alias, and projects already grouped under this one move along.
        """
        if target is None:
            if self.alias_of_id is not None:
                self.alias_of = None
                self.save(update_fields=["alias_of"])
            return
        if target.team_id != self.team_id:
            raise ValueError("A project can only be grouped with a project of the same team.")
        target = target.canonical
        if target.pk == self.pk:
            raise ValueError("A project cannot be grouped under itself.")
        Project.objects.filter(alias_of=self).update(alias_of=target)
        self.alias_of = target
        self.save(update_fields=["alias_of"])


class BatchStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"


class IngestBatch(models.Model):
    """The raw request body, archived before parsing so nothing is ever lost."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ingest_batches"
    )
    token = models.ForeignKey(
        "accounts.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    machine = models.ForeignKey(
        Machine, null=True, blank=True, on_delete=models.SET_NULL, related_name="batches"
    )
    received_at = models.DateTimeField(default=dj_timezone.now)
    body_gzip = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveIntegerField()
    compressed_bytes = models.PositiveIntegerField()
    status = models.CharField(
        max_length=12, choices=BatchStatus.choices, default=BatchStatus.RECEIVED
    )
    error = models.TextField(blank=True)
    counts = models.JSONField(default=dict, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Set when derived work (blocks, pace, budgets) has been done for this batch.
    derived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="ingestbatch_status_received"),
            # The catch-up sweep looks for processed batches without derived work.
            models.Index(fields=["derived_at", "status"], name="ingestbatch_derived"),
            models.Index(fields=["user", "sha256"], name="ingestbatch_user_sha"),
        ]

    def __str__(self) -> str:
        return f"batch {self.public_id} ({self.status})"

    def body(self) -> bytes:
        """The archived request body, decompressed."""
        return gzip.decompress(bytes(self.body_gzip))


class Source(models.TextChoices):
    CLAUDE_CODE = "claude-code", "Claude Code"
    CODEX = "codex", "Codex"
    OPENCODE = "opencode", "OpenCode"
    OTHER = "other", "Other"


class TokenCounts(models.Model):
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_creation_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, default=Decimal("0"))

    class Meta:
        abstract = True


class Reported(models.Model):
    """A row an ingest batch wrote, and the batch it came from."""

    batch = models.ForeignKey(
        IngestBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When the batch that last reported this row was received: only a batch received at or
    # after it may replace the row, so a late replay of an older report never wins.
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class ReportedFact(TokenCounts, Reported):
    """A usage fact (daily, hourly, session): token counts and cost from one report."""

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class DailyUsage(ReportedFact):
    """One machine, source agent, day (team timezone), project and model."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="daily")
    source = models.CharField(max_length=40, default=Source.CLAUDE_CODE)
    day = models.DateField()
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="daily")
    model = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["machine", "source", "day", "project", "model"],
                name="dailyusage_natural_key",
            ),
        ]
        indexes = [
            # The usage API filters by day range first, then groups.
            models.Index(fields=["day", "machine"], name="dailyusage_day_machine"),
            models.Index(fields=["project", "day"], name="dailyusage_project_day"),
        ]

    def __str__(self) -> str:
        return f"{self.machine_id} {self.source} {self.day} {self.model}"


class HourlyUsage(ReportedFact):
    """One UTC hour of one machine's Claude usage (`ccusage blocks --session-length 1`)."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="hourly")
    hour = models.DateTimeField()
    entries = models.IntegerField(default=0)
    last_activity = models.DateTimeField()
    models_used = models.JSONField(default=list)
    # ccusage's usageLimitResetTime: the account hit its limit during this hour.
    limit_reset_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["machine", "hour"], name="hourlyusage_natural_key"),
        ]
        indexes = [
            # Block computation reads all machines of a subscription in time order.
            models.Index(fields=["hour"], name="hourlyusage_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.machine_id} {self.hour:%Y-%m-%d %H:00}"


class SessionUsage(ReportedFact):
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="sessions")
    session_id = models.CharField(max_length=200)
    source = models.CharField(max_length=40, default=Source.CLAUDE_CODE)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="sessions")
    first_activity = models.DateTimeField(null=True, blank=True)
    last_activity = models.DateTimeField()
    models_used = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["machine", "session_id"], name="sessionusage_natural_key"
            ),
        ]
        indexes = [
            # The sessions list is newest first; duplicate detection groups by session id.
            models.Index(fields=["last_activity"], name="sessionusage_last_activity"),
            models.Index(fields=["session_id"], name="sessionusage_session_id"),
        ]

    def __str__(self) -> str:
        return f"{self.machine_id} {self.session_id}"


class RateLimitSnapshot(Reported):
    """One captured statusline reading of the official quota, as one machine saw it."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="rate_limits"
    )
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="rate_limits")
    captured_at = models.DateTimeField()
    five_hour_used_pct = models.DecimalField(max_digits=6, decimal_places=2, null=True)
    five_hour_resets_at = models.DateTimeField(null=True)
    seven_day_used_pct = models.DecimalField(max_digits=6, decimal_places=2, null=True)
    seven_day_resets_at = models.DateTimeField(null=True)
    # Per-model weekly windows when Claude Code reports them: {"opus": {"used_percentage", …}}.
    extra_windows = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["machine", "captured_at"], name="ratelimitsnapshot_natural_key"
            ),
        ]
        indexes = [
            # "Latest reading per subscription" and history charts.
            models.Index(fields=["subscription", "-captured_at"], name="ratelimit_sub_captured"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} at {self.captured_at:%Y-%m-%d %H:%M}"


class Block(TokenCounts):
    """A 5-hour billing block of one subscription, merged across its machines."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="blocks")
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    last_activity = models.DateTimeField()
    entries = models.IntegerField(default=0)
    models_used = models.JSONField(default=list)
    machine_count = models.PositiveSmallIntegerField(default=1)
    overlap = models.BooleanField(default=False)
    limit_hit_at = models.DateTimeField(null=True, blank=True)
    # As of the last recompute or beat refresh; pages and the API re-check it against now.
    is_active = models.BooleanField(default=False)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-start_time"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "start_time"], name="block_natural_key"
            ),
        ]
        indexes = [
            models.Index(fields=["start_time"], name="block_start"),
            # The beat task closes the few blocks still marked active.
            models.Index(
                fields=["end_time"], condition=models.Q(is_active=True), name="block_active_end"
            ),
        ]

    def __str__(self) -> str:
        return f"block {self.start_time:%Y-%m-%d %H:00} ({self.subscription_id})"

    def is_active_at(self, now=None) -> bool:
        now = now or dj_timezone.now()
        return now < self.end_time and (now - self.last_activity).total_seconds() < 5 * 3600


class BlockContribution(TokenCounts):
    block = models.ForeignKey(Block, on_delete=models.CASCADE, related_name="contributions")
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="+")
    entries = models.IntegerField(default=0)
    last_activity = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["block", "machine"], name="blockcontribution_key"),
        ]

    def __str__(self) -> str:
        return f"{self.machine_id} in {self.block_id}"
