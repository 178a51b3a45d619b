"""What the usage endpoints share: reference serializers, token figures, date ranges, whose
data a request reads, and turning query errors into 400s."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers

from accounts.access import can_view_member, sees_other_members, team_of
from telemetry_site.api.fields import DayField, MoneyField
from usage import queries
from usage.models import Subscription

SCOPE_HELP = (
    "`me` (default): your machines; `team`: every machine of your team. A `machine` or "
    "`member` filter chooses whose data instead."
)
SUBSCRIPTION_HELP = "A subscription's public id (yours, or a member's for admins)."
MEMBER_HELP = "A member's public id or email (admins, or when the team shares figures)."


def query_call(fn, *args, **kwargs):
    """Run a usage.queries function, turning its QueryError into a 400 naming the parameter."""
    try:
        return fn(*args, **kwargs)
    except queries.QueryError as exc:
        raise exceptions.ValidationError({exc.param: [exc.message]}) from None


class TokenFiguresSerializer(serializers.Serializer):
    """The four token counts of ccusage, their total and the cost in US dollars."""

    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_creation_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = MoneyField()


_MONEY = MoneyField()
_TOKEN_NAMES = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")


def token_figures(row: dict) -> dict:
    """TokenFiguresSerializer's representation of `row` (token counts as integers, cost_usd in
    USD as a decimal string), built without DRF's per-field machinery: a big team's answer
    has a thousand rows, which cost more to serialize field by field than to query."""
    out = {name: int(row[name]) for name in _TOKEN_NAMES}
    out["total_tokens"] = int(row["total_tokens"])
    out["cost_usd"] = _MONEY.to_representation(row["cost_usd"])
    return out


class MemberRefSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    email = serializers.EmailField()
    name = serializers.CharField(source="display_name")


class SubscriptionRefSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    label = serializers.CharField()  # type: ignore[assignment]  # field, not Field.label: drf-stubs#78
    plan = serializers.CharField()


class MachineRefSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    name = serializers.CharField()


class ProjectRefSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    key = serializers.CharField()
    name = serializers.CharField(source="display_name")


class CountsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    removed = serializers.IntegerField(
        help_text="Daily facts replaced because the report lists the same usage under other "
        "keys (another reporting timezone or project-key mode): deleted so nothing counts twice."
    )
    kept = serializers.IntegerField(
        required=False,
        help_text="Daily facts inside the report's window that it no longer lists (their logs "
        "were cleaned up): kept, since absence never deletes.",
    )


class RangeSerializer(serializers.Serializer):
    since = DayField(required=False, help_text="First reporting day (team timezone), inclusive.")
    until = DayField(required=False, help_text="Last reporting day (team timezone), inclusive.")

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["must not be before since"]})
        return attrs


class WhoseSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=queries.SCOPES,
        default="me",
        help_text="`me` (default): your subscriptions; `team`: every member's (admins).",
    )
    subscription = serializers.UUIDField(required=False, help_text=SUBSCRIPTION_HELP)
    member = serializers.CharField(required=False, max_length=254, help_text=MEMBER_HELP)


def not_yours(what: str) -> exceptions.NotFound:
    """The 404 for an object outside what the viewer may see: never a 403 that confirms it."""
    return exceptions.NotFound(f"No such {what}.")


def resolve_subscription(viewer, public_id) -> Subscription:
    """A subscription the viewer may see; anyone else's is simply not found."""
    sub = Subscription.objects.select_related("owner").filter(public_id=public_id).first()
    if sub is None or not can_view_member(viewer, sub.owner):
        raise not_yours("subscription")
    return sub


def member_or_404(viewer, value):
    """A member of the viewer's team whose figures they may see, else a 404."""
    try:
        return queries.resolve_member(viewer, value)
    except (Http404, PermissionDenied):
        raise not_yours("member in your team") from None


def subscriptions_for(viewer, *, scope="me", member=None, subscription=None):
    """The subscriptions a request reads: one by id, a member's, the team's, or your own."""
    qs = Subscription.objects.select_related("owner").order_by("owner__email", "label", "pk")
    if subscription:
        return qs.filter(pk=resolve_subscription(viewer, subscription).pk)
    if member:
        return qs.filter(owner=member_or_404(viewer, member))
    if scope == "team":
        team = team_of(viewer)
        if team is None:
            return qs.filter(owner=viewer)
        if not sees_other_members(viewer):
            raise exceptions.PermissionDenied("Only team admins see every member's subscriptions.")
        return qs.filter(owner__membership__team=team)
    return qs.filter(owner=viewer)


def subscriptions_asked(viewer, params: dict):
    """The subscriptions chosen by a WhoseSerializer's validated query (see subscriptions_for)."""
    return subscriptions_for(
        viewer,
        scope=params.get("scope", "me"),
        member=params.get("member"),
        subscription=params.get("subscription"),
    )
