"""Django admin for the operator: users, teams, memberships, the allow-list, tokens, login links.

The admin logs in through the magic link (its login page redirects to ours) and has no password
pages. Token secrets and link hashes are never shown or editable.
"""

from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone

from accounts import views
from accounts.models import AllowedEmail, ApiToken, LoginLink, Membership, Team, User

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _MemberCount(TypedDict):
    member_count: int


# The admin logs in through the magic link and has no password pages. The default site is
# patched per instance (not subclassed), hence setattr: the stubs type these as methods.
for _name, _view in {
    "login": views.admin_login,
    "password_change": views.admin_password_change,
    "password_change_done": views.admin_password_change,
}.items():
    setattr(admin.site, _name, _view)
admin.site.site_header = "claude-telemetry administration"
admin.site.site_title = "claude-telemetry admin"


class MembershipInline(admin.StackedInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["team"]
    fields = ["team", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "name",
        "team",
        "role",
        "is_active",
        "is_staff",
        "last_activity_at",
        "date_joined",
    ]
    list_filter = ["is_active", "is_staff", "is_superuser", "membership__role", "membership__team"]
    search_fields = ["email", "name"]
    ordering = ["email"]
    readonly_fields = ["public_id", "last_login", "last_activity_at", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "name", "timezone", "public_id"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser"]}),
        ("Activity", {"fields": ["date_joined", "last_login", "last_activity_at"]}),
        ("Django permissions", {"classes": ["collapse"], "fields": ["groups", "user_permissions"]}),
    ]
    filter_horizontal = ["groups", "user_permissions"]
    inlines = [MembershipInline]
    actions = ["deactivate_users", "activate_users"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("membership__team")

    @admin.display(ordering="membership__team__name")
    def team(self, obj: User):
        return obj.team

    @admin.display(ordering="membership__role")
    def role(self, obj: User):
        membership = obj.team_membership
        return membership.get_role_display() if membership else "—"

    @admin.action(description="Deactivate selected users (ends their sessions and tokens)")
    def deactivate_users(self, request, queryset):
        if queryset.filter(pk=request.user.pk).exists():
            self.message_user(request, "You cannot deactivate yourself.", messages.ERROR)
            return
        count = queryset.filter(is_active=True).update(is_active=False)
        self.message_user(request, f"Deactivated {count} user(s).", messages.SUCCESS)

    @admin.action(description="Reactivate selected users")
    def activate_users(self, request, queryset):
        count = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(request, f"Reactivated {count} user(s).", messages.SUCCESS)


class AllowedEmailInline(admin.TabularInline):
    model = AllowedEmail
    extra = 0
    fields = ["pattern", "role", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone", "members_see_each_other", "members", "created_at"]
    list_filter = ["members_see_each_other", "timezone"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["public_id", "created_at"]
    inlines = [AllowedEmailInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(ordering="member_count")
    def members(self, obj: "WithAnnotations[Team, _MemberCount]") -> int:
        return obj.member_count


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role", "team"]
    search_fields = ["user__email", "user__name", "team__name", "team__slug"]
    autocomplete_fields = ["user", "team"]
    list_select_related = ["user", "team"]
    readonly_fields = ["created_at"]


@admin.register(AllowedEmail)
class AllowedEmailAdmin(admin.ModelAdmin):
    list_display = ["pattern", "team", "role", "kind", "created_by", "created_at"]
    list_filter = ["role", "team"]
    search_fields = ["pattern", "team__name", "team__slug"]
    autocomplete_fields = ["team"]
    list_select_related = ["team", "created_by"]
    readonly_fields = ["public_id", "created_by", "created_at"]

    @admin.display(description="Kind")
    def kind(self, obj: AllowedEmail) -> str:
        return "domain" if obj.is_domain else "address"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "user",
        "display",
        "scopes",
        "status",
        "created_at",
        "last_used_at",
        "last_used_ip",
        "expires_at",
    ]
    list_filter = [TokenStatusFilter, "user__membership__team"]
    search_fields = ["name", "user__email", "prefix", "last_four"]
    list_select_related = ["user"]
    # Tokens are created where their secret can be shown once: the tokens page or the command.
    fields = [
        "name",
        "user",
        "display",
        "scopes",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "last_used_ip",
    ]
    readonly_fields = [
        "user",
        "display",
        "scopes",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "last_used_ip",
    ]
    actions = ["revoke_tokens"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Token")
    def display(self, obj: ApiToken) -> str:
        return obj.display

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


LOGIN_LINK_FIELDS = (
    "user",
    "next_url",
    "created_at",
    "expires_at",
    "used_at",
    "requested_ip",
    "used_ip",
)


@admin.register(LoginLink)
class LoginLinkAdmin(admin.ModelAdmin):
    list_display = ["user", "status", "created_at", "expires_at", "used_at", "requested_ip"]
    list_filter = ["used_at", "created_at"]
    search_fields = ["user__email", "requested_ip", "used_ip"]
    list_select_related = ["user"]
    fields = LOGIN_LINK_FIELDS
    readonly_fields = LOGIN_LINK_FIELDS

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
