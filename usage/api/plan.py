"""GET and POST /api/v1/agent/plan/: the plan of the caller's Claude account, as the agent's
`setup` asks for it.

A member's first sync creates their default subscription with the plan unknown (no price is
assumed, see usage.models.Plan). The agent asks which plan it is and sends the answer here.
A plan someone already chose is never overwritten from here: that is a 409 naming the plan,
and it is changed on the subscriptions page (Settings -> Subscriptions) instead.
"""

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from telemetry_site.api.errors import RETRY_AFTER, ErrorSerializer, error_responses
from telemetry_site.api.permissions import TokenHasScope
from telemetry_site.api.throttles import IngestThrottle
from telemetry_site.api.views import validated
from usage.models import Machine, Plan, Subscription

# What the agent offers (a custom price or an enterprise contract is set on the web page).
AGENT_PLANS = (Plan.PRO, Plan.MAX5X, Plan.MAX20X, Plan.TEAM, Plan.API)


class PlanChoiceSerializer(serializers.Serializer):
    plan = serializers.CharField()
    plan_label = serializers.CharField()


class AccountPlanSerializer(serializers.Serializer):
    subscription = serializers.UUIDField(
        allow_null=True, help_text="The subscription's id; null before the first sync."
    )
    subscription_label = serializers.CharField(allow_null=True)
    plan = serializers.ChoiceField(choices=Plan.choices)
    plan_label = serializers.CharField()
    chosen = serializers.BooleanField(help_text="False while the plan is unknown.")
    choices = PlanChoiceSerializer(many=True, help_text="The plans POST accepts.")


class PlanQuerySerializer(serializers.Serializer):
    machine = serializers.UUIDField(
        required=False,
        help_text="This machine's subscription (the caller's own machine); default: the "
        "caller's default subscription.",
    )


class PlanChoiceRequestSerializer(PlanQuerySerializer):
    plan = serializers.ChoiceField(choices=[(p.value, p.label) for p in AGENT_PLANS])


def _subscription(user, machine_uuid) -> Subscription | None:
    """The caller's subscription: the one of their machine `machine_uuid`, else their default.

    Raises NotFound (404) for a machine that is not the caller's: nobody sets another
    member's plan here, whatever their role.
    """
    from rest_framework.exceptions import NotFound

    if machine_uuid is not None:
        machine = (
            Machine.objects.filter(uuid=machine_uuid, owner=user)
            .select_related("subscription")
            .first()
        )
        if machine is None:
            raise NotFound("No machine of yours has this UUID.")
        return machine.subscription
    return Subscription.objects.filter(owner=user, is_default=True).first()


def _body(sub: Subscription | None) -> dict:
    plan = Plan(sub.plan) if sub is not None and sub.plan in Plan.values else Plan.UNKNOWN
    return {
        "subscription": sub.public_id if sub is not None else None,
        "subscription_label": sub.label if sub is not None else None,
        "plan": plan.value,
        "plan_label": plan.label,
        "chosen": plan != Plan.UNKNOWN,
        "choices": [{"plan": p.value, "plan_label": p.label} for p in AGENT_PLANS],
    }


class AgentPlanView(APIView):
    """The caller's own subscription only; the role in the team does not matter."""

    required_scope = "ingest"
    permission_classes = [IsAuthenticated, TokenHasScope]
    throttle_classes = [IngestThrottle]

    @extend_schema(
        summary="The plan of the caller's Claude account",
        operation_id="agent_plan",
        tags=["agent"],
        parameters=[PlanQuerySerializer, RETRY_AFTER],
        responses={200: AccountPlanSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        query = validated(PlanQuerySerializer, request)
        sub = _subscription(request.user, query.get("machine"))
        return Response(AccountPlanSerializer(_body(sub)).data)

    @extend_schema(
        summary="Choose the plan of the caller's Claude account while it is unknown",
        operation_id="agent_plan_choose",
        tags=["agent"],
        request=PlanChoiceRequestSerializer,
        responses={
            200: AccountPlanSerializer,
            **error_responses(400, 401, 403, 404, 429),
            409: OpenApiResponse(
                ErrorSerializer,
                description="Someone already chose another plan; change it on the "
                "subscriptions page.",
            ),
        },
    )
    def post(self, request):
        serializer = PlanChoiceRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)  # 400 naming each bad field
        data = serializer.validated_data
        plan = Plan(data["plan"])
        with transaction.atomic():
            sub = _subscription(request.user, data.get("machine"))
            if sub is None:
                # Before the first sync: make the default subscription the sync would make.
                sub = Subscription.default_for(request.user)
            sub = Subscription.objects.select_for_update().get(pk=sub.pk)
            if sub.plan == Plan.UNKNOWN:
                sub.plan = plan
                sub.save(update_fields=["plan"])
            elif sub.plan != plan:
                current = Plan(sub.plan).label if sub.plan in Plan.values else sub.plan
                return Response(
                    {
                        "detail": f"The plan of “{sub.label}” is already {current}.",
                        "errors": {
                            "plan": [
                                f"Already chosen: {current}. Change it on the subscriptions "
                                "page (Settings, Subscriptions)."
                            ]
                        },
                    },
                    status=status.HTTP_409_CONFLICT,
                )
        return Response(AccountPlanSerializer(_body(sub)).data)
