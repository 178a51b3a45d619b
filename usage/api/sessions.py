"""GET /api/v1/sessions/: sessions the viewer may see, newest first by default."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers

from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.fields import DayField, MoneyField
from telemetry_site.api.pagination import Pagination
from telemetry_site.api.views import ReadView, validated
from usage import queries
from usage.api.common import (
    SCOPE_HELP,
    MachineRefSerializer,
    MemberRefSerializer,
    ProjectRefSerializer,
    query_call,
)
from usage.models import SessionUsage


class SessionSerializer(serializers.ModelSerializer):
    machine = serializers.SerializerMethodField()
    member = MemberRefSerializer(source="machine.owner")
    project = serializers.SerializerMethodField()
    models = serializers.ListField(child=serializers.CharField(), source="models_used")
    cost_usd = MoneyField()

    class Meta:
        model = SessionUsage
        fields = [
            "session_id",
            "source",
            "machine",
            "member",
            "project",
            "first_activity",
            "last_activity",
            "models",
            "input_tokens",
            "output_tokens",
            "cache_creation_tokens",
            "cache_read_tokens",
            "total_tokens",
            "cost_usd",
        ]

    @extend_schema_field(MachineRefSerializer)
    def get_machine(self, session) -> dict:
        return {"uuid": str(session.machine.uuid), "name": session.machine.name}

    @extend_schema_field(ProjectRefSerializer)
    def get_project(self, session) -> dict:
        # Aliased keys show as the project they are grouped under, as everywhere else.
        return ProjectRefSerializer(session.project.canonical).data


class SessionQuerySerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=queries.SCOPES, default="me", help_text=SCOPE_HELP)
    machine = serializers.UUIDField(required=False)
    member = serializers.CharField(required=False, max_length=254)
    project = serializers.CharField(required=False, max_length=500)
    source = serializers.CharField(  # type: ignore[assignment]  # field, not Field.source: drf-stubs#158
        required=False, max_length=40
    )
    since = DayField(required=False, help_text="Last activity on or after this day.")
    until = DayField(required=False, help_text="Last activity on or before this day.")
    order = serializers.ChoiceField(choices=tuple(queries.SESSION_ORDERS), default="-last_activity")


class SessionListView(ReadView, generics.ListAPIView):
    serializer_class = SessionSerializer
    pagination_class = Pagination

    @extend_schema(
        operation_id="sessions_list",
        tags=["sessions"],
        summary="Sessions, newest first by default",
        parameters=[SessionQuerySerializer, RETRY_AFTER],
        responses={200: SessionSerializer(many=True), **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = validated(SessionQuerySerializer, self.request)
        return query_call(queries.sessions_for, self.request.user, **params)
