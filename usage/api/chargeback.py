"""GET /api/v1/chargeback/: cost and tokens per period by project by member with names, as JSON
or, with `?format=csv`, as a spreadsheet file (usage.exports.chargeback_rows).

Who sees what is the usage endpoint's rule: members one by one only for those who may see
other members' figures; others asking for the team get "All members" rows per project.
"""

import io
from datetime import date
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import renderers, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.fields import DayField, MoneyField
from telemetry_site.api.views import ReadView, validated
from telemetry_site.formatting import SafeCsvWriter, decimal_string
from usage import exports, queries
from usage.api.common import SCOPE_HELP, query_call


class ChargebackCsvRenderer(renderers.BaseRenderer):
    """`?format=csv` (or Accept: text/csv): the rows through SafeCsvWriter. An error still
    answers as JSON, with a JSON content type, so a script can read the reason."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        context = renderer_context or {}
        response = context.get("response")
        if not isinstance(data, dict) or "rows" not in data:
            if response is not None:
                response["Content-Type"] = "application/json"
            return renderers.JSONRenderer().render(data, "application/json", context)
        out = io.StringIO()
        writer = SafeCsvWriter(out)
        for row in exports.chargeback_csv_rows(data["rows"]):
            writer.writerow(row)
        if response is not None:
            name = f"chargeback-{data['since']}-{data['until']}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return out.getvalue().encode("utf-8")


class ChargebackQuerySerializer(serializers.Serializer):
    since = DayField(required=False, help_text="First team day, inclusive (default: the 1st).")
    until = DayField(required=False, help_text="Last team day, inclusive (default: today).")
    period = serializers.ChoiceField(
        choices=exports.CHARGEBACK_PERIODS,
        default="month",
        help_text="Rows per calendar month, ISO week, day, or one total for the range.",
    )
    scope = serializers.ChoiceField(choices=queries.SCOPES, default="team", help_text=SCOPE_HELP)
    machine = serializers.UUIDField(required=False)
    project = serializers.CharField(required=False, max_length=500)
    model = serializers.CharField(required=False, max_length=200)
    member = serializers.CharField(required=False, max_length=254)
    source = serializers.CharField(  # type: ignore[assignment]  # field, not Field.source: drf-stubs#158
        required=False, max_length=40
    )

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["must not be before since"]})
        return attrs


class ChargebackRowSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    project = serializers.CharField()
    project_id = serializers.CharField(help_text="The project's public id.")
    member = serializers.CharField(help_text="The member's name, or “All members”.")
    email = serializers.CharField(allow_blank=True)
    member_id = serializers.CharField(allow_blank=True)
    former_member = serializers.BooleanField(help_text="The member has left the team.")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_creation_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = MoneyField()


class ChargebackSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    period = serializers.CharField()
    per_member = serializers.BooleanField(help_text="Rows name members one by one.")
    results = ChargebackRowSerializer(many=True, source="rows")


class ChargebackView(ReadView, APIView):
    renderer_classes = [renderers.JSONRenderer, ChargebackCsvRenderer]

    @extend_schema(
        operation_id="chargeback",
        tags=["usage"],
        summary="Cost per period by project by member, JSON or CSV",
        parameters=[
            ChargebackQuerySerializer,
            OpenApiParameter("format", str, enum=["json", "csv"], description="csv: a file."),
            RETRY_AFTER,
        ],
        responses={200: ChargebackSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request, format=None):
        params = validated(ChargebackQuerySerializer, request)
        team_today = exports.team_today(request.user)
        until: date = params.pop("until", team_today)
        since: date = params.pop("since", min(until, team_today).replace(day=1))
        rows = query_call(exports.chargeback_rows, request.user, since=since, until=until, **params)
        per_member = exports.shows_members(
            request.user, scope=params.get("scope", "team"), member=params.get("member")
        )
        period = params.get("period", "month")
        if request.accepted_renderer.format == "csv":
            # The CSV renderer writes the rows as they are (dates, cents).
            return Response({"since": since, "until": until, "rows": rows})
        return Response(
            {
                "since": since.isoformat(),
                "until": until.isoformat(),
                "period": period,
                "per_member": per_member,
                "results": json_rows(rows),
            }
        )


def json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as ChargebackRowSerializer represents them (ISO dates, USD as a decimal
    string with at least cents), built as plain dicts: a large team's month is thousands
    of rows, which the serializer's per-field machinery took most of a second to walk.
    tests/usage/api/test_chargeback.py checks the two agree byte for byte."""
    # Costs come in cents (exports.chargeback_rows), well within MoneyField's places, so its
    # representation is the decimal string itself.
    money = decimal_string
    return [
        {
            "period_start": row["period_start"].isoformat(),
            "period_end": row["period_end"].isoformat(),
            "project": row["project"],
            "project_id": row["project_id"],
            "member": row["member"],
            "email": row["email"],
            "member_id": row["member_id"],
            "former_member": row["former_member"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "cache_creation_tokens": row["cache_creation_tokens"],
            "cache_read_tokens": row["cache_read_tokens"],
            "total_tokens": row["total_tokens"],
            "cost_usd": money(row["cost_usd"]),
        }
        for row in rows
    ]
