"""GET /api/v1/data-quality/: what may be off in the figures of the machines a viewer may
see (lost history, copied folders, duplicate sessions, requests shared with other machines)
and the models counted at $0 for lack of a price (usage.analytics.quality, usage.pricing)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.fields import MoneyField
from telemetry_site.api.views import ReadView, validated
from usage import queries
from usage.analytics.quality import (
    COPIED_FOLDER_ADVICE,
    DUPLICATE_SESSION_ADVICE,
    LOST_HISTORY_ADVICE,
    SHARED_REQUESTS_ADVICE,
    findings_by_machine,
)
from usage.api.common import SCOPE_HELP, MachineRefSerializer, query_call
from usage.api.pricing import UnpricedModelSerializer
from usage.models import DailyUsage
from usage.pricing import models_without_ccusage_price


class DataQualityQuerySerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=queries.SCOPES, default="me", help_text=SCOPE_HELP)
    member = serializers.CharField(required=False, max_length=254)


class MachineFindingsSerializer(serializers.Serializer):
    machine = MachineRefSerializer()
    owner = serializers.EmailField(source="machine.owner.email")
    lost_history_days = serializers.ListField(
        child=serializers.DateField(),
        help_text="Days the machine's logs no longer hold (Claude Code's cleanup); still stored.",
    )
    copied_from = MachineRefSerializer(
        allow_null=True, help_text="The machine whose agent folder this one's was copied from."
    )
    duplicate_sessions = serializers.IntegerField(
        help_text="Sessions another machine also reported (counted once per machine)."
    )
    duplicate_with = serializers.ListField(child=serializers.CharField())
    double_counted_usd = MoneyField(help_text="What those copies add, charged once per session.")
    shared_requests = serializers.IntegerField(
        help_text="Requests in its logs another machine reported first (left out here)."
    )
    shared_with = serializers.ListField(child=serializers.CharField())
    unpriced_models = serializers.ListField(
        child=serializers.CharField(),
        help_text="Models of this machine ccusage reported at $0 and no server price covers.",
    )


class DataQualitySerializer(serializers.Serializer):
    machines = MachineFindingsSerializer(many=True, help_text="Only machines with a finding.")
    unpriced_models = UnpricedModelSerializer(many=True)
    advice = serializers.DictField(child=serializers.CharField())


class DataQualityView(ReadView, APIView):
    @extend_schema(
        operation_id="data_quality",
        tags=["machines"],
        summary="Data-quality findings of the machines you may see",
        parameters=[DataQualityQuerySerializer, RETRY_AFTER],
        responses={200: DataQualitySerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = validated(DataQualityQuerySerializer, request)
        machines = list(
            query_call(queries.machines_for, request.user, **params).select_related(
                "owner", "copied_from"
            )
        )
        findings = [f for f in findings_by_machine(machines).values() if f.any]
        data = {
            "machines": sorted(findings, key=lambda f: (f.machine.name, f.machine.pk)),
            "unpriced_models": models_without_ccusage_price(
                DailyUsage.objects.filter(machine__in=[m.pk for m in machines])
            ),
            "advice": {
                "lost_history": LOST_HISTORY_ADVICE,
                "copied_folder": COPIED_FOLDER_ADVICE,
                "duplicate_sessions": DUPLICATE_SESSION_ADVICE,
                "shared_requests": SHARED_REQUESTS_ADVICE,
            },
        }
        return Response(DataQualitySerializer(data).data)
