"""GET /api/v1/unpriced-models/: usage ccusage reported at $0 because it has no price for
the model, per model, and whether the server prices it (usage.pricing)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.views import ReadView, validated
from usage import queries
from usage.api.common import (
    MEMBER_HELP,
    SCOPE_HELP,
    RangeSerializer,
    TokenFiguresSerializer,
    query_call,
)
from usage.models import DailyUsage
from usage.pricing import models_without_ccusage_price


class UnpricedQuerySerializer(RangeSerializer):
    scope = serializers.ChoiceField(choices=queries.SCOPES, default="me", help_text=SCOPE_HELP)
    machine = serializers.CharField(required=False, max_length=100, help_text="Machine uuid.")
    member = serializers.CharField(required=False, max_length=254, help_text=MEMBER_HELP)


class UnpricedModelSerializer(TokenFiguresSerializer):
    model = serializers.CharField(help_text="The model as ccusage names it.")
    priced_by_server = serializers.BooleanField(
        help_text="True: the server's price per million tokens gives `cost_usd`; false: these "
        "tokens count as $0 until the operator sets a price in the Django admin."
    )


class UnpricedModelsSerializer(serializers.Serializer):
    results = UnpricedModelSerializer(many=True)


class UnpricedModelsView(ReadView, APIView):
    @extend_schema(
        operation_id="unpriced_models",
        tags=["usage"],
        summary="Models ccusage could not price, with their tokens",
        parameters=[UnpricedQuerySerializer, RETRY_AFTER],
        responses={200: UnpricedModelsSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = validated(UnpricedQuerySerializer, request)
        scope = query_call(
            queries.machine_scope,
            request.user,
            scope=params.get("scope", "me"),
            machine=params.get("machine"),
            member=params.get("member"),
        )
        facts = DailyUsage.objects.filter(scope)
        if params.get("since"):
            facts = facts.filter(day__gte=params["since"])
        if params.get("until"):
            facts = facts.filter(day__lte=params["until"])
        results = models_without_ccusage_price(facts)
        return Response(UnpricedModelsSerializer({"results": results}).data)
