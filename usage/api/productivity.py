"""GET /api/v1/productivity/: Claude Code's productivity figures from its OTLP metrics (lines,
commits, pull requests, active time, edit accept rate) with cost per commit and per pull
request, grouped by day, member, machine or project (usage.productivity)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.fields import DayField, MoneyField
from telemetry_site.api.views import ReadView, validated
from usage import productivity, queries
from usage.api.common import MEMBER_HELP, SCOPE_HELP, query_call


class ProductivityQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=productivity.GROUP_BY, default="day")
    since = DayField(required=False, help_text="First reporting day, inclusive.")
    until = DayField(required=False, help_text="Last reporting day, inclusive.")
    scope = serializers.ChoiceField(choices=queries.SCOPES, default="me", help_text=SCOPE_HELP)
    machine = serializers.UUIDField(required=False)
    member = serializers.CharField(required=False, max_length=254, help_text=MEMBER_HELP)
    project = serializers.CharField(
        required=False, max_length=500, help_text="Project public id or key."
    )

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["must not be before since"]})
        return attrs


class ProductivityFiguresSerializer(serializers.Serializer):
    lines_added = serializers.IntegerField(help_text="claude_code.lines_of_code.count, added.")
    lines_removed = serializers.IntegerField(help_text="claude_code.lines_of_code.count, removed.")
    commits = serializers.IntegerField(help_text="claude_code.commit.count.")
    pull_requests = serializers.IntegerField(help_text="claude_code.pull_request.count.")
    active_seconds = serializers.IntegerField(
        help_text="claude_code.active_time.total (user and CLI time), whole seconds."
    )
    edits_accepted = serializers.IntegerField(help_text="Edit, Write, NotebookEdit accepted.")
    edits_rejected = serializers.IntegerField(help_text="Edit, Write, NotebookEdit rejected.")
    accept_rate = serializers.FloatField(
        allow_null=True, help_text="Accepted / decided edits, 0 to 1; null without decisions."
    )
    cost_usd = MoneyField(help_text="Claude Code cost of the same group and days (USD).")
    cost_per_commit = MoneyField(allow_null=True, help_text="USD; null without commits.")
    cost_per_pull_request = MoneyField(
        allow_null=True, help_text="USD; null without pull requests."
    )


class ProductivityRowSerializer(ProductivityFiguresSerializer):
    key = serializers.CharField(
        help_text="Day (YYYY-MM-DD) or the member's, machine's or project's id."
    )
    label = serializers.CharField(  # type: ignore[assignment]  # field, not Field.label: drf-stubs#78
        help_text="A readable name for the key."
    )


class ProductivityResponseSerializer(serializers.Serializer):
    results = ProductivityRowSerializer(many=True)
    totals = ProductivityFiguresSerializer()


class ProductivityView(ReadView, APIView):
    @extend_schema(
        operation_id="productivity",
        tags=["usage"],
        summary="Lines, commits, pull requests, active time, accept rate and cost per commit",
        description="From Claude Code's OTLP metrics (docs/otlp.md); machines that send no "
        "OTLP metrics have no productivity figures.",
        parameters=[ProductivityQuerySerializer, RETRY_AFTER],
        responses={
            200: ProductivityResponseSerializer,
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    def get(self, request):
        params = validated(ProductivityQuerySerializer, request)
        data = query_call(productivity.aggregate_productivity, request.user, **params)
        return Response(ProductivityResponseSerializer(data).data)
