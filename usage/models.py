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
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone as dj_timezone

from accounts.models import Team


class Plan(models.TextChoices):
    # Nobody has said which plan pays for the account (a first sync creates the subscription):
    # no price is assumed, so plan value shows the API value only.
    UNKNOWN = "unknown", "Plan unknown"
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


class ModelPrice(models.Model):
    """The server's price of a model ccusage cannot price, in USD per million tokens of each
    kind; the operator edits it in the Django admin (usage.pricing applies it)."""

    model = models.CharField(max_length=200, unique=True, help_text="As ccusage names it.")
    input_usd_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(0)]
    )
    output_usd_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(0)]
    )
    cache_creation_usd_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(0)]
    )
    cache_read_usd_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(0)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model"]

    def __str__(self) -> str:
        return self.model


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
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.UNKNOWN)
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


class IngestPath(models.TextChoices):
    AGENT = "agent", "Agent (ccusage)"
    OTLP = "otlp", "Claude Code OTLP export"


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
    # The name the agent last sent: a `name` that differs was set by a person and wins.
    reported_name = models.CharField(max_length=100, blank=True)
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
    # Where the agent runs (a SHA-256 of the OS's machine id, the OS user and the home
    # folder): the same agent UUID from another place is a copied folder, a machine of its own.
    fingerprint = models.CharField(max_length=64, blank=True)
    os_user = models.CharField(max_length=100, blank=True)
    copied_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )
    # How its facts arrive: the agent's ccusage reports, or Claude Code's own OTLP export.
    ingest_path = models.CharField(
        max_length=10, choices=IngestPath.choices, default=IngestPath.AGENT
    )

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


# Where a working folder usually sits, in ccusage's encoded keys (home folders on Linux, macOS
# and Windows, then the folders people keep their repositories in).
_HOME_PREFIX = re.compile(r"^(?:[A-Za-z]--Users-[^-]+-|-Users-[^-]+-|-home-[^-]+-|-root-)")
_CONTAINERS = (
    "src-",
    "code-",
    "projects-",
    "Projects-",
    "repos-",
    "git-",
    "dev-",
    "work-",
    "workspace-",
    "Documents-",
    "Desktop-",
    "source-repos-",
)


def readable_project_name(key: str) -> str:
    """The best name the ccusage key alone can give: `-home-dev-src-my-app` → `my-app`.

    Claude Code writes every character of the folder but ASCII letters and digits as `-`, so
    the key cannot tell `my-app` from `my/app` or `my.app`: the name is what follows the home
    folder and one usual repositories folder (`src`, `code`, `projects`, …), dashes kept. A
    folder named in another script is all dashes in the key; then the key itself is the name,
    never a neighbouring folder's. The agent's real folder name (ingest's `projects`) beats
    this. `(no project)` for the empty key.
    """
    if not key:
        return "(no project)"
    rest = _HOME_PREFIX.sub("", key, count=1)
    if rest == key and key.startswith("-") and not key.startswith("--"):
        rest = key[1:]  # a folder outside any home: drop the root's `/`
    for container in _CONTAINERS:
        if rest.startswith(container) and len(rest) > len(container):
            rest = rest[len(container) :]
            break
    if not rest.strip("-") or "--" in rest or rest.startswith("-") or rest.endswith("-"):
        # Characters the key cannot carry (non-Latin letters, spaces): nothing readable is left.
        return key
    return rest


def legacy_project_name(key: str) -> str:
    """The name earlier versions derived from a key (its last dash-separated part), so a name
    nobody chose can still be recognised and improved."""
    stripped = key.strip("-")
    if not key or not stripped:
        return readable_project_name(key)
    return stripped.rsplit("-", 1)[-1]


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
    # Without credentials; `remote_key` is its normalised form (usage.projects) that groups
    # one repository cloned under different folders.
    git_remote = models.CharField(max_length=1000, blank=True)
    remote_key = models.CharField(max_length=1000, blank=True)
    # An admin took this project out of its group: automatic grouping leaves it alone.
    keep_apart = models.BooleanField(default=False)
    # Whose agent reported the folder and remote first: only that member's agent changes them;
    # teammates' agents fill what is still blank (usage.ingest.facts.resolve_projects).
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["display_name"]
        constraints = [
            # Ingest finds or creates a project by (team, key).
            models.UniqueConstraint(fields=["team", "key"], name="project_team_key"),
        ]
        indexes = [
            # Ingest groups the team's projects that share a normalised remote.
            models.Index(fields=["team", "remote_key"], name="project_team_remote"),
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
        if not self.key or not target.key:
            # The empty key is usage no project is known for (other agents, sessions without a
            # folder): charging it to a real project would skew that project's chargeback.
            raise ValueError("Usage with no project stays on its own; it cannot be grouped.")
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
    # Which receiver took the body: the agent's JSON envelope or an OTLP/HTTP export.
    ingest_path = models.CharField(max_length=20, default="agent")
    status = models.CharField(
        max_length=12, choices=BatchStatus.choices, default=BatchStatus.RECEIVED
    )
    error = models.TextField(blank=True)
    counts = models.JSONField(default=dict, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Set when derived work (blocks, pace, budgets) has been done for this batch.
    derived_at = models.DateTimeField(null=True, blank=True)
    # Who is processing a `received` batch and since when (usage.ingest.backlog): a claim
    # older than INGEST_BACKLOG_GRACE_SECONDS was abandoned (worker killed, request timed
    # out) and may be taken again, up to INGEST_BACKLOG_MAX_ATTEMPTS attempts.
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Refused for its content (a 4xx answer): such bodies are deduplicated by hash, capped
    # per team and expired after INGEST_REJECTED_RETENTION_DAYS. Internal failures are not.
    rejected = models.BooleanField(default=False)
    # How many more times this exact rejected body arrived after the first.
    repeats = models.PositiveIntegerField(default=0)
    # The team's cap on rejected bytes was reached: only the metadata and reason are kept.
    body_discarded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="ingestbatch_status_received"),
            # The daily expiry of rejected bodies and the per-team cap on their bytes.
            models.Index(fields=["rejected", "received_at"], name="ingestbatch_rejected"),
            # The catch-up sweep looks for processed batches without derived work.
            models.Index(fields=["derived_at", "status"], name="ingestbatch_derived"),
            models.Index(fields=["user", "sha256"], name="ingestbatch_user_sha"),
        ]

    def __str__(self) -> str:
        return f"batch {self.public_id} ({self.status})"

    def body(self) -> bytes:
        """The archived request body, decompressed (empty when it was discarded)."""
        if self.body_discarded:
            return b""
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
    # ccusage reported no cost for these tokens and cost_usd is the server's ModelPrice.
    priced_by_server = models.BooleanField(default=False)
    # How the report that wrote this row cut days and named projects: only a report of the
    # same machine and source that regroups (another timezone or key mode) replaces rows it
    # no longer lists (usage.ingest.facts.replace_regrouped). Empty: not known.
    report_timezone = models.CharField(max_length=64, blank=True)
    project_key_mode = models.CharField(max_length=10, blank=True)

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
            # Usage ccusage could not price (pages, data-quality API): a handful of rows, found
            # without reading the others.
            models.Index(
                fields=["machine", "day"],
                condition=models.Q(priced_by_server=True)
                | models.Q(cost_usd=0, total_tokens__gt=0),
                name="dailyusage_unpriced",
            ),
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
    # The hour's first entry (the agent's `hour_first_activity`); null from agents that do not
    # send it, and then the hour's start stands in for it.
    first_activity = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["machine", "hour"], name="hourlyusage_natural_key"),
        ]
        indexes = [
            # Block computation reads all machines of a subscription in time order.
            models.Index(fields=["hour"], name="hourlyusage_hour"),
            # A subscription's hours of a period (plan value, blocks' burn) read from the index
            # alone: its machines' hours with the cost and the limit reset beside them.
            models.Index(
                fields=["machine", "hour"],
                include=["cost_usd", "limit_reset_at"],
                name="hourlyusage_machine_cover",
            ),
            # Limit hits: the few hours a machine reported a limit reset in, read per machine.
            models.Index(
                fields=["machine", "hour"],
                condition=models.Q(limit_reset_at__isnull=False),
                name="hourlyusage_limit_hit",
            ),
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
            # The sessions list is newest first, ties by id (usage.queries.SESSION_ORDERS), so a
            # page is read from the index without sorting the tied rows; duplicate detection
            # groups by session id.
            models.Index(fields=["last_activity", "id"], name="sessionusage_newest"),
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


class LatestQuotaReading(models.Model):
    """The latest reading of one quota window of a subscription (five_hour, seven_day or a
    per-model window), stored when readings arrive or go (usage.analytics.ratelimits keeps
    it), so a team's accounts are ranked by closeness to a limit with one ORDER BY. A reading
    is current until `stale_at` (its reset time, or the capture plus the window's length)."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="latest_quota_readings"
    )
    window = models.CharField(max_length=40)
    # The snapshot the reading comes from. Deleting it (a machine deleted) leaves the row
    # without one: a mark that the subscription's stored readings must be recomputed, which
    # readers do before they rank (ratelimits.repair_latest_readings).
    snapshot = models.ForeignKey(
        RateLimitSnapshot, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    used_pct = models.FloatField()
    resets_at = models.DateTimeField(null=True)
    captured_at = models.DateTimeField()
    stale_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "window"], name="latestquotareading_one_per_window"
            ),
        ]
        indexes = [
            # The few rows whose snapshot was deleted, found without a scan.
            models.Index(
                fields=["subscription"],
                condition=models.Q(snapshot__isnull=True),
                name="latestquotareading_orphaned",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.window} {self.used_pct}%"


class Block(TokenCounts):
    """A 5-hour billing block of one subscription, merged across its machines."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="blocks")
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    # The block's first entry, where ccusage's burn rate starts; null when no machine of its
    # first hour said when that hour's first entry was (then start_time stands in).
    first_activity = models.DateTimeField(null=True, blank=True)
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


class RequestKey(models.Model):
    """One Claude Code request (ccusage's dedupe key: message id + request id, hashed by the
    agent) and the machine that reported it first. Another machine whose logs hold the same
    request (a copied or synced ~/.claude, a resumed transcript) leaves it out of its reports,
    so the team counts it once, as ccusage would on all the logs together."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    # The first 8 bytes of SHA-256("<message id>:<request id>"), as a signed 64-bit integer.
    key = models.BigIntegerField()
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="request_keys")
    hour = models.DateTimeField()
    batch = models.ForeignKey(
        IngestBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            # Ingest claims keys with INSERT … ON CONFLICT DO NOTHING: the first machine wins.
            models.UniqueConstraint(fields=["team", "key"], name="requestkey_team_key"),
        ]
        indexes = [
            # The machines page sums each machine's requests that others also reported.
            models.Index(fields=["machine", "hour"], name="requestkey_machine_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.key:016x} of {self.machine_id}"


class SharedRequest(models.Model):
    """A request this machine's logs hold but another machine reported first (its RequestKey
    owner): left out of this machine's reports, listed on the machines page."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="shared_requests")
    owner = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="+")
    key = models.BigIntegerField()
    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["machine", "key"], name="sharedrequest_machine_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key:016x} of {self.machine_id}, first from {self.owner_id}"


class OtlpRequest(models.Model):
    """One `claude_code.api_request` event of Claude Code's OTLP export: the source the OTLP
    machine's facts are summed from, and what makes a resent event count once."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="otlp_requests")
    # Claude Code's `request_id` attribute, or `event:<SHA-256 of the log record>` without one.
    request_id = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    model = models.CharField(max_length=200)
    session_id = models.CharField(max_length=200, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cache_creation_tokens = models.BigIntegerField(default=0)
    cache_read_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, default=Decimal("0"))
    batch = models.ForeignKey(
        IngestBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["machine", "request_id"], name="otlprequest_machine_request"
            ),
        ]
        indexes = [
            models.Index(fields=["machine", "occurred_at"], name="otlprequest_machine_time"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} of {self.machine_id}"


class OtlpMetricPoint(models.Model):
    """One delta data point of a Claude Code metric from its OTLP export: what the OTLP
    machine's metric-only facts and productivity figures are summed from, and what makes a
    resent point count once (its `key`)."""

    machine = models.ForeignKey(
        Machine, on_delete=models.CASCADE, related_name="otlp_metric_points"
    )
    batch = models.ForeignKey(
        IngestBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    metric = models.CharField(max_length=100)
    # SHA-256 of the metric's name, the point's attributes and its interval: the same point
    # sent again (an exporter's retry) has the same key.
    key = models.CharField(max_length=64)
    start_at = models.DateTimeField(null=True, blank=True)
    # The end of the point's interval: its hour and team day are those of this instant.
    end_at = models.DateTimeField()
    # Counts, tokens, USD or seconds, as the metric's unit says.
    value = models.DecimalField(max_digits=30, decimal_places=10)
    session_id = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True)
    # The point's `type` attribute: input/output/cacheRead/cacheCreation, added/removed, user/cli.
    kind = models.CharField(max_length=40, blank=True)
    tool_name = models.CharField(max_length=100, blank=True)
    decision = models.CharField(max_length=20, blank=True)
    # A `project.name` attribute (point or resource), when the machine sets one.
    project_name = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["machine", "key"], name="otlpmetricpoint_machine_key"),
        ]
        indexes = [
            # Rebuilding a machine's facts reads its points of some days, or of some sessions.
            models.Index(fields=["machine", "end_at"], name="otlpmetricpoint_machine_time"),
            models.Index(fields=["machine", "session_id"], name="otlpmetricpoint_session"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.end_at:%Y-%m-%d %H:%M} of {self.machine_id}"


class ProductivityDaily(models.Model):
    """Claude Code's productivity figures (metrics its logs do not have) of one machine, team
    day and project: lines added and removed, commits, pull requests, active time, and the
    accept/reject decisions on its edit tools. Recomputed from OtlpMetricPoint rows."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="productivity")
    # Denormalised from the machine so per-member sums need no join.
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="productivity"
    )
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="productivity")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="productivity")
    day = models.DateField()
    lines_added = models.BigIntegerField(default=0)
    lines_removed = models.BigIntegerField(default=0)
    commits = models.IntegerField(default=0)
    pull_requests = models.IntegerField(default=0)
    active_seconds = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal("0"))
    edits_accepted = models.IntegerField(default=0)
    edits_rejected = models.IntegerField(default=0)
    # Per edit tool: {"Edit": {"accept": 3, "reject": 1}, "Write": {…}}.
    edit_decisions = models.JSONField(default=dict, blank=True)
    batch = models.ForeignKey(
        IngestBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["machine", "day", "project"], name="productivitydaily_natural_key"
            ),
        ]
        indexes = [
            # The productivity API and the team page sum a team's days in a range.
            models.Index(fields=["team", "day"], name="productivitydaily_team_day"),
        ]

    def __str__(self) -> str:
        return f"{self.machine_id} {self.day} {self.project_id}"


class RollupPeriod(models.TextChoices):
    DAY = "day", "Day"
    MONTH = "month", "Month"
    # A key's whole history, on ALL_TIME_DAY: all-time figures read one row per key.
    ALL = "all", "All time"


class RollupDimension(models.TextChoices):
    """What one rollup row is a total of, within its team and period (`key_id`/`key_text`)."""

    TEAM = "team", "The whole team"
    MEMBER = "member", "One member and source agent (key_id: the user's id, key_text: the source)"
    MACHINE = "machine", "One machine and source agent (key_id: its id, key_text: the source)"
    # The fact's own project, aliases not resolved: grouping changes need no rewrite.
    PROJECT = "project", "One project (key_id: its id)"
    MODEL = "model", "One model (key_text)"
    SOURCE = "source", "One source agent (key_text)"
    # The chargeback's rows: a member's usage of one project, all source agents together.
    MEMBER_PROJECT = (
        "member_project",
        "One member's usage of one project (key_id: the user's id, key_text: the project's id)",
    )


class UsageRollupBase(TokenCounts):
    """Sums of DailyUsage per team, period and one dimension (usage.rollups reads them)."""

    # No database constraint: rows follow the facts (the triggers delete a row whose facts
    # are all gone), so deleting a team never has to order its rollups before its facts.
    team = models.ForeignKey(
        Team, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    period = models.CharField(max_length=5, choices=RollupPeriod.choices)
    # The day, the first day of the month, or 0001-01-01 for all time.
    day = models.DateField()
    dimension = models.CharField(max_length=20, choices=RollupDimension.choices)
    key_id = models.BigIntegerField(default=0)
    key_text = models.CharField(max_length=200, default="", blank=True)
    # How many fact rows the sums hold: a row at 0 is empty and removed.
    facts = models.IntegerField(default=0)

    class Meta:
        abstract = True


class UsageRollup(UsageRollupBase):
    """Daily facts summed per team, day or month, and dimension, kept by database triggers on
    DailyUsage in the writing transaction (usage.rollups; migration 0014)."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "dimension", "period", "day", "key_id", "key_text"],
                name="usagerollup_key",
            ),
        ]
        indexes = [
            # One member's or machine's totals need no team (usage.rollups.Slice).
            models.Index(
                fields=["dimension", "key_id", "period", "day"], name="usagerollup_key_day"
            ),
            # Rows whose facts are all gone are found and removed after each change.
            models.Index(fields=["team"], condition=models.Q(facts=0), name="usagerollup_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.team_id} {self.dimension} {self.key_id or self.key_text} {self.day}"


class UsageRollupDelta(UsageRollupBase):
    """Changes to UsageRollup not folded in yet (PostgreSQL): the triggers append here, so
    concurrent ingests never wait on each other's rollup rows; readers add these rows, and
    usage.rollups.fold_deltas moves them into UsageRollup."""

    class Meta:
        indexes = [
            models.Index(
                fields=["team", "dimension", "period", "day"], name="usagerollupdelta_team"
            ),
            models.Index(fields=["dimension", "key_id"], name="usagerollupdelta_key"),
        ]

    def __str__(self) -> str:
        return f"delta {self.team_id} {self.dimension} {self.day}"


class CopiedSession(models.Model):
    """A session id that two or more machines of a team reported (a copied or synced Claude
    folder), recorded by the copied-session check after ingest, so the machines page reads
    these few ids instead of grouping every session of the team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    session_id = models.CharField(max_length=200)
    found_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "session_id"], name="copiedsession_key"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} in {self.team_id}"
