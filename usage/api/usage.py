"""GET /api/v1/usage/: token and cost totals grouped by day, week, month, project, model,
machine, member or source (usage.queries.aggregate_usage)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.fields import DayField
from telemetry_site.api.views import ReadView, validated
from usage import queries
from usage.api.common import SCOPE_HELP, TokenFiguresSerializer, query_call, token_figures


class UsageQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=queries.GROUP_BY, default="day")
    since = DayField(required=False, help_text="First reporting day, inclusive.")
    until = DayField(required=False, help_text="Last reporting day, inclusive.")
    scope = serializers.ChoiceField(choices=queries.SCOPES, default="me", help_text=SCOPE_HELP)
    machine = serializers.UUIDField(required=False)
    project = serializers.CharField(
        required=False, max_length=500, help_text="Project public id or ccusage key."
    )
    model = serializers.CharField(required=False, max_length=200)
    member = serializers.CharField(
        required=False, max_length=254, help_text="Member public id or email."
    )
    source = serializers.CharField(  # type: ignore[assignment]  # field, not Field.source: drf-stubs#158
        required=False, max_length=40, help_text="claude-code, codex, opencode, …"
    )

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["must not be before since"]})
        return attrs


class UsageRowSerializer(TokenFiguresSerializer):
    key = serializers.CharField(
        help_text="Day or week start (YYYY-MM-DD), month (YYYY-MM), public id, model or source. "
        "By period, every period of the range is listed, zeros included."
    )
    label = serializers.CharField(  # type: ignore[assignment]  # field, not Field.label: drf-stubs#78
        help_text="A readable name for the key."
    )


class UsageResponseSerializer(serializers.Serializer):
    results = UsageRowSerializer(many=True)
    totals = TokenFiguresSerializer()


class UsageView(ReadView, APIView):
    @extend_schema(
        operation_id="usage",
        tags=["usage"],
        summary="Token and cost totals, grouped",
        description=(
            "Grouped by `day`, `week` (from Monday) or `month`, every period from `since` to "
            "`until` (reporting days, inclusive) has a row: a period without usage is a row "
            "of zeros. Without `since` the rows start at the first period with usage, without "
            "`until` they end at the last one. Other groupings list only keys with usage, "
            "largest cost first."
        ),
        parameters=[UsageQuerySerializer, RETRY_AFTER],
        responses={200: UsageResponseSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = validated(UsageQuerySerializer, request)
        data = query_call(queries.aggregate_usage, request.user, **params)
        return Response(usage_response(data))


def usage_response(data: dict) -> dict:
    """UsageResponseSerializer's representation of aggregate_usage's answer, field for field
    (token_figures): {"results": [{<token fields>, "cost_usd", "key", "label"}], "totals"}."""
    results = []
    for row in data["results"]:
        item = token_figures(row)
        # As CharField: a string, or null as it came.
        item["key"] = None if row["key"] is None else str(row["key"])
        item["label"] = None if row["label"] is None else str(row["label"])
        results.append(item)
    return {"results": results, "totals": token_figures(data["totals"])}
