"""Django admin for budgets, channels, alerts and deliveries (last errors visible, resend)."""

from django.contrib import admin, messages
from django.db import models

from budgets import notify
from budgets.models import (
    Alert,
    Budget,
    Channel,
    Delivery,
    EnforcementEvent,
    EnforcementExemption,
    QuotaAlertSetting,
    QuotaEnforcement,
    Report,
    ReportSetting,
    StaleAgentSetting,
)


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "team",
        "scope",
        "period",
        "amount_usd",
        "thresholds",
        "enforcement",
        "active",
    ]
    list_filter = ["scope", "period", "enforcement", "active", "team"]
    search_fields = ["name", "team__name"]
    raw_id_fields = ["project", "member", "created_by"]
    filter_horizontal = ["channels"]
    readonly_fields = ["public_id", "created_at", "updated_at"]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "team",
        "kind",
        "enabled",
        "consecutive_failures",
        "last_error_at",
        "last_error_short",
    ]
    list_filter = ["kind", "team", ("disabled_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "url", "team__name"]
    filter_horizontal = ["members"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    # The secret is never shown here: the page shows it once, and "rotate" makes a new one.
    readonly_fields = [
        "public_id",
        "created_at",
        "created_by",
        "last_success_at",
        "last_error",
        "last_error_at",
        "consecutive_failures",
        "disabled_at",
        "disabled_reason",
    ]
    actions = ["re_enable", "rotate_secret"]

    @admin.display(boolean=True)
    def enabled(self, obj: Channel) -> bool:
        return obj.is_enabled

    @admin.display(description="last error")
    def last_error_short(self, obj: Channel) -> str:
        return obj.last_error[:120]

    @admin.action(description="Re-enable the selected channels")
    def re_enable(self, request, queryset):
        count = 0
        for channel in queryset:
            channel.enable()
            count += 1
        self.message_user(request, f"{count} channel(s) enabled.", messages.SUCCESS)

    @admin.action(description="Give the selected webhook channel a new secret (shown once)")
    def rotate_secret(self, request, queryset):
        channels = list(queryset.filter(kind=Channel.Kind.WEBHOOK)[:2])
        if len(channels) != 1:
            self.message_user(request, "Select exactly one webhook channel.", messages.ERROR)
            return
        secret = channels[0].rotate_secret()
        self.message_user(
            request,
            f"New secret for '{channels[0].name}' (copy it now, it is not shown again): {secret}",
            messages.WARNING,
        )


# Shown, and read-only: a delivery's record is written by budgets.notify only.
DELIVERY_INLINE_FIELDS = (
    "channel",
    "recipient",
    "status",
    "attempts",
    "next_attempt_at",
    "sent_at",
    "last_error",
)


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = DELIVERY_INLINE_FIELDS
    readonly_fields = DELIVERY_INLINE_FIELDS

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "team", "kind", "budget", "period_start", "threshold", "window"]
    list_filter = ["kind", "team"]
    date_hierarchy = "created_at"
    inlines = [DeliveryInline]
    # Alerts are history: the unique keys are what prevents sending twice.
    readonly_fields = [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "alert",
        "channel",
        "recipient",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error_short",
    ]
    list_filter = ["status", "channel__kind"]
    search_fields = ["last_error", "channel__name", "recipient__email"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["resend"]

    @admin.display(description="last error")
    def last_error_short(self, obj: Delivery) -> str:
        return obj.last_error[:120]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Resend the selected failed deliveries")
    def resend(self, request, queryset):
        count = notify.resend(queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            f"{count} failed deliver{'y' if count == 1 else 'ies'} queued again "
            "(sent ones are never resent).",
            messages.SUCCESS,
        )


@admin.register(QuotaAlertSetting)
class QuotaAlertSettingAdmin(admin.ModelAdmin):
    list_display = ["subscription", "enabled", "threshold", "updated_at"]
    raw_id_fields = ["subscription"]


@admin.register(StaleAgentSetting)
class StaleAgentSettingAdmin(admin.ModelAdmin):
    list_display = ["user", "enabled", "hours", "updated_at"]
    raw_id_fields = ["user"]


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """Sent reports: read only (the figures are what went out); delete one to send it again."""

    list_display = ["team", "kind", "period_start", "period_end", "created_at"]
    list_filter = ["kind", "team"]
    readonly_fields = [
        "public_id",
        "team",
        "kind",
        "period_start",
        "period_end",
        "data",
        "created_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ReportSetting)
class ReportSettingAdmin(admin.ModelAdmin):
    list_display = ["user", "weekly_digest", "monthly_report", "updated_at"]
    raw_id_fields = ["user"]


@admin.register(QuotaEnforcement)
class QuotaEnforcementAdmin(admin.ModelAdmin):
    list_display = [
        "team",
        "five_hour_warn_at",
        "five_hour_stop_at",
        "seven_day_warn_at",
        "seven_day_stop_at",
    ]


@admin.register(EnforcementExemption)
class EnforcementExemptionAdmin(admin.ModelAdmin):
    list_display = ["team", "member", "budget", "until", "note", "created_by"]
    raw_id_fields = ["member", "budget", "created_by"]


@admin.register(EnforcementEvent)
class EnforcementEventAdmin(admin.ModelAdmin):
    """A record of what members were told; not edited."""

    list_display = ["created_at", "team", "member", "kind", "label", "threshold", "exempt"]
    list_filter = ["kind", "team"]
    raw_id_fields = ["member"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False
