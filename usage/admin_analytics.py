"""Django admin for the analytics: the editable plan price table and read-only blocks."""

from django.contrib import admin

from usage.models import Block, BlockContribution, PlanPrice


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


class BlockContributionInline(admin.TabularInline):
    model = BlockContribution
    fields = ["machine", "total_tokens", "cost_usd", "entries", "last_activity"]
    readonly_fields = fields
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
