"""Django admin for the operator: machines, subscriptions, projects, the ingest archive, facts.

Facts are written only by ingest (each is replaced by the newest report), so they are shown
read-only here; a wrong fact is fixed by reprocessing its batch, not by editing it.
"""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from usage.ingest.pipeline import IngestError, process_batch
from usage.models import (
    Block,
    BlockContribution,
    DailyUsage,
    HourlyUsage,
    IngestBatch,
    Machine,
    ModelPrice,
    OtlpMetricPoint,
    PlanPrice,
    ProductivityDaily,
    Project,
    RateLimitSnapshot,
    SessionUsage,
    Subscription,
)
from usage.pricing import reprice
from usage.projects import normalise_git_remote, regroup, strip_credentials

BODY_PREVIEW_CHARS = 4000


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["label", "owner", "plan", "monthly_price_usd", "is_default", "created_at"]
    list_filter = ["plan", "is_default"]
    search_fields = ["label", "owner__email", "public_id"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    readonly_fields = ["public_id", "created_at"]


@admin.register(Machine)
class MachineAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "owner",
        "team",
        "subscription",
        "last_seen_at",
        "last_sync_status",
        "agent_version",
        "ccusage_version",
        "retired_at",
    ]
    list_filter = ["team", "last_sync_status", "ccusage_version", "agent_version"]
    search_fields = ["name", "hostname", "uuid", "owner__email"]
    list_select_related = ["owner", "team", "subscription"]
    raw_id_fields = ["owner"]
    autocomplete_fields = ["subscription"]
    readonly_fields = [
        "uuid",
        "first_seen_at",
        "last_seen_at",
        "last_sync_status",
        "last_sync_error",
        "last_sync_counts",
        "lost_history_at",
        "lost_history_days",
    ]


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["team", "key", "display_name", "alias_of", "keep_apart", "cwd", "git_remote"]

    def clean_git_remote(self):
        return strip_credentials(self.cleaned_data.get("git_remote") or "")

    def clean_alias_of(self):
        target = self.cleaned_data.get("alias_of")
        team = self.cleaned_data.get("team") or getattr(self.instance, "team", None)
        if target is None:
            return None
        if team is not None and target.team_id != team.pk:
            raise forms.ValidationError("Choose a project of the same team.")
        if self.instance.pk and target.canonical.pk == self.instance.pk:
            raise forms.ValidationError("A project cannot be grouped under itself.")
        return target


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectForm
    list_display = ["display_name", "key", "team", "alias_of", "git_remote", "created_at"]
    list_filter = ["team"]
    search_fields = ["display_name", "key", "cwd", "git_remote"]
    list_select_related = ["team", "alias_of"]
    autocomplete_fields = ["alias_of"]
    readonly_fields = ["public_id", "remote_key", "created_at"]
    actions = ["group_under_oldest", "ungroup"]

    def save_model(self, request, obj, form, change):
        target = form.cleaned_data.get("alias_of")
        obj.alias_of = None if target is None else obj.alias_of
        obj.remote_key = normalise_git_remote(obj.git_remote)[:1000]
        super().save_model(request, obj, form, change)
        # set_alias also moves projects grouped under this one, so no chain is ever built.
        obj.set_alias(target)

    @admin.action(description="Group selected projects under the oldest of them")
    def group_under_oldest(self, request, queryset):
        teams = set(queryset.values_list("team_id", flat=True))
        if len(teams) != 1:
            self.message_user(request, "Choose projects of one team.", messages.ERROR)
            return
        projects = list(queryset.order_by("created_at", "id"))
        target = projects[0].canonical
        for project in projects:
            if project.pk != target.pk:
                regroup(project, target, by=request.user)
        self.message_user(
            request, f"{len(projects) - 1} project(s) now count as {target.display_name}."
        )

    @admin.action(description="Ungroup selected projects")
    def ungroup(self, request, queryset):
        # keep_apart: the automatic grouping by git remote does not put them back.
        count = queryset.exclude(alias_of=None).update(alias_of=None, keep_apart=True)
        self.message_user(request, f"{count} project(s) ungrouped.")


@admin.register(IngestBatch)
class IngestBatchAdmin(admin.ModelAdmin):
    list_display = [
        "public_id",
        "user",
        "machine",
        "received_at",
        "status",
        "size_bytes",
        "compressed_bytes",
        "derived_at",
    ]
    list_filter = ["status", "rejected", "received_at"]
    search_fields = ["public_id", "sha256", "user__email", "machine__name", "machine__uuid"]
    list_select_related = ["user", "machine"]
    date_hierarchy = "received_at"
    exclude = ["body_gzip"]
    readonly_fields = [
        "public_id",
        "user",
        "token",
        "machine",
        "received_at",
        "sha256",
        "size_bytes",
        "compressed_bytes",
        "status",
        "error",
        "counts",
        "processed_at",
        "derived_at",
        "body_preview",
    ]
    actions = ["reprocess"]

    def get_queryset(self, request):
        # The list never needs the archived bodies, which may be megabytes each.
        return super().get_queryset(request).defer("body_gzip")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Body (start)")
    def body_preview(self, obj):
        text = obj.body()[:BODY_PREVIEW_CHARS].decode("utf-8", errors="replace")
        return format_html("<pre>{}</pre>", text)

    @admin.action(description="Reprocess selected batches (oldest first)")
    def reprocess(self, request, queryset):
        done = failed = 0
        for batch in queryset.model.objects.filter(pk__in=queryset.values("pk")).order_by(
            "received_at", "id"
        ):
            try:
                process_batch(batch, live=False)
                done += 1
            except IngestError as exc:
                failed += 1
                self.message_user(request, f"{batch.public_id}: {exc.detail}", messages.WARNING)
            except Exception as exc:
                failed += 1
                self.message_user(
                    request,
                    f"{batch.public_id}: internal error {exc.__class__.__name__}",
                    messages.ERROR,
                )
        self.message_user(request, f"Reprocessed {done} batch(es); {failed} failed.")


class FactAdmin(admin.ModelAdmin):
    """Read-only: ingest owns facts."""

    list_select_related = ["machine"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DailyUsage)
class DailyUsageAdmin(FactAdmin):
    list_display = [
        "day",
        "machine",
        "source",
        "project",
        "model",
        "total_tokens",
        "cost_usd",
        "priced_by_server",
    ]
    list_filter = ["source", "priced_by_server", "day"]
    search_fields = ["model", "machine__name", "machine__uuid", "project__key"]
    list_select_related = ["machine", "project"]
    date_hierarchy = "day"


@admin.register(HourlyUsage)
class HourlyUsageAdmin(FactAdmin):
    list_display = ["hour", "machine", "entries", "total_tokens", "cost_usd", "limit_reset_at"]
    list_filter = ["hour"]
    search_fields = ["machine__name", "machine__uuid"]
    date_hierarchy = "hour"


@admin.register(SessionUsage)
class SessionUsageAdmin(FactAdmin):
    list_display = [
        "session_id",
        "machine",
        "project",
        "source",
        "last_activity",
        "total_tokens",
        "cost_usd",
    ]
    list_filter = ["source", "last_activity"]
    search_fields = ["session_id", "machine__name", "project__key"]
    list_select_related = ["machine", "project"]
    date_hierarchy = "last_activity"


@admin.register(RateLimitSnapshot)
class RateLimitSnapshotAdmin(FactAdmin):
    list_display = [
        "captured_at",
        "subscription",
        "machine",
        "five_hour_used_pct",
        "five_hour_resets_at",
        "seven_day_used_pct",
        "seven_day_resets_at",
    ]
    list_filter = ["captured_at"]
    search_fields = ["machine__name", "subscription__label"]
    list_select_related = ["machine", "subscription"]
    date_hierarchy = "captured_at"


@admin.register(OtlpMetricPoint)
class OtlpMetricPointAdmin(FactAdmin):
    """Delta points of Claude Code's OTLP metrics, kept to rebuild a machine's facts."""

    list_display = ["end_at", "metric", "machine", "kind", "model", "session_id", "value"]
    list_filter = ["metric", "end_at"]
    search_fields = ["metric", "session_id", "model", "machine__name", "machine__uuid"]
    date_hierarchy = "end_at"


@admin.register(ProductivityDaily)
class ProductivityDailyAdmin(FactAdmin):
    """Commits, pull requests, lines and edit decisions per machine, project and day (OTLP)."""

    list_display = [
        "day",
        "member",
        "machine",
        "project",
        "commits",
        "pull_requests",
        "lines_added",
        "lines_removed",
    ]
    list_filter = ["day"]
    search_fields = ["member__email", "machine__name", "project__key", "project__display_name"]
    list_select_related = ["member", "machine", "project"]
    date_hierarchy = "day"


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """Prices for models ccusage cannot price. Saving or deleting one reprices, at once, the
    daily facts of that model that ccusage reported at $0 (usage.pricing.reprice)."""

    list_display = [
        "model",
        "input_usd_per_mtok",
        "output_usd_per_mtok",
        "cache_creation_usd_per_mtok",
        "cache_read_usd_per_mtok",
        "updated_at",
    ]
    search_fields = ["model"]
    readonly_fields = ["updated_at"]

    def save_model(self, request, obj, form, change):
        old_model = form.initial.get("model") if change else None
        super().save_model(request, obj, form, change)
        changed = reprice(obj.model)
        if old_model and old_model != obj.model:
            changed += reprice(old_model)
        self.message_user(request, f"{changed} daily row(s) repriced.")

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        reprice(obj.model)

    def delete_queryset(self, request, queryset):
        models = list(queryset.values_list("model", flat=True))
        super().delete_queryset(request, queryset)
        for model in models:
            reprice(model)


@admin.register(PlanPrice)
class PlanPriceAdmin(admin.ModelAdmin):
    """The one price table plan value reads; edit it when list prices or contracts change."""

    list_display = ["plan", "monthly_usd", "capacity_vs_pro", "updated_at"]
    list_editable = ["monthly_usd", "capacity_vs_pro"]
    readonly_fields = ["updated_at"]
    fieldsets = [
        (None, {"fields": ["plan", "monthly_usd", "capacity_vs_pro", "updated_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # A row per plan: the plan of an existing row is its identity.
        return [*self.readonly_fields, "plan"] if obj else self.readonly_fields


BLOCK_CONTRIBUTION_FIELDS = ("machine", "total_tokens", "cost_usd", "entries", "last_activity")


class BlockContributionInline(admin.TabularInline):
    model = BlockContribution
    fields = BLOCK_CONTRIBUTION_FIELDS
    readonly_fields = BLOCK_CONTRIBUTION_FIELDS
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin):
    """Blocks are derived data: recomputed from hourly facts, never edited by hand."""

    list_display = [
        "start_time",
        "subscription",
        "total_tokens",
        "cost_usd",
        "machine_count",
        "overlap",
        "is_active",
        "limit_hit_at",
    ]
    list_filter = ["overlap", "is_active"]
    search_fields = ["subscription__label", "subscription__owner__email"]
    list_select_related = ["subscription"]
    date_hierarchy = "start_time"
    inlines = [BlockContributionInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
