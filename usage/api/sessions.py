"""GET /api/v1/sessions/: sessions the viewer may see, newest first by default."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.utils.urls import replace_query_param

from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.fields import DayField, MoneyField
from telemetry_site.api.pagination import MAX_OFFSET, Pagination
from telemetry_site.api.views import ReadView, validated
from usage import queries
from usage.api.common import (
    SCOPE_HELP,
    MachineRefSerializer,
    MemberRefSerializer,
    ProjectRefSerializer,
    query_call,
    token_figures,
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

    def to_representation(self, instance) -> dict:
        """The fields above, built directly: DRF's field-by-field machinery costs more than
        the query for a page of a hundred sessions (tests compare both)."""
        machine, owner = instance.machine, instance.machine.owner
        project = instance.project.canonical
        return {
            "session_id": instance.session_id,
            "source": instance.source,
            "machine": {"uuid": str(machine.uuid), "name": machine.name},
            "member": {
                "public_id": str(owner.public_id),
                "email": owner.email,
                "name": owner.display_name,
            },
            "project": {
                "public_id": str(project.public_id),
                "key": project.key,
                "name": project.display_name,
            },
            "first_activity": _TIME.to_representation(instance.first_activity)
            if instance.first_activity is not None
            else None,
            "last_activity": _TIME.to_representation(instance.last_activity),
            "models": list(instance.models_used),
            **token_figures(vars(instance)),
        }


_TIME = serializers.DateTimeField()
# Beyond this many sessions the list's `count` is left out (null): counting a big team's two
# million sessions takes longer than reading any page of them.
COUNT_CAP = 10_000


class SessionPagination(Pagination):
    """limit/offset paging whose `count` is exact up to COUNT_CAP sessions (or up to the end
    of the page asked for, when that is further) and null beyond: only that many rows are
    counted. `next` is there whenever more sessions follow the page."""

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        limit, offset = self.get_limit(request), self.get_offset(request)
        assert limit is not None  # default_limit is set, so there always is one
        self.limit, self.offset = limit, offset
        page_end = offset + limit
        bound = max(COUNT_CAP, page_end)
        # The filter alone (no ordering, no joins for display) up to one row past the bound.
        seen = queryset.select_related(None).order_by()[: bound + 1].count()
        self.count = seen if seen <= bound else None
        # Where the next page starts, when more sessions follow this one.
        self.next_offset = page_end if seen > page_end else None
        self.display_page_controls = False
        if offset >= seen:
            return []
        return list(queryset[offset:page_end])

    def get_next_link(self):
        if self.next_offset is None or self.request is None:
            return None
        url = self.request.build_absolute_uri()
        url = replace_query_param(url, self.limit_query_param, self.limit)
        return replace_query_param(url, self.offset_query_param, self.next_offset)

    def get_paginated_response_schema(self, schema):
        answer = super().get_paginated_response_schema(schema)
        answer["properties"]["count"] = {
            "type": "integer",
            "nullable": True,
            "example": 123,
            "description": f"Sessions in all pages; null when more than {COUNT_CAP:,} (and "
            "more than the page asked for reaches): follow `next` until it is null.",
        }
        return answer


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
    # As /api/v1/plan-value/ and /api/v1/rate-limits/: a bad page is a 400, not the default.
    limit = serializers.IntegerField(
        required=False, min_value=1, help_text="Sessions a page: 100 unless asked, 1,000 at most."
    )
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET)


class SessionListView(ReadView, generics.ListAPIView):
    serializer_class = SessionSerializer
    pagination_class = SessionPagination

    @extend_schema(
        operation_id="sessions_list",
        tags=["sessions"],
        summary="Sessions, newest first by default",
        description=(
            "Pages with `limit` (100 unless asked, 1,000 at most) and `offset`. `count` is "
            f"exact up to {COUNT_CAP:,} sessions and null beyond (a big team has millions); "
            "`next` is null on the last page."
        ),
        parameters=[SessionQuerySerializer, RETRY_AFTER],
        responses={200: SessionSerializer(many=True), **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = validated(SessionQuerySerializer, self.request)
        # The paginator reads these itself.
        params.pop("limit", None)
        params.pop("offset", None)
        return query_call(queries.sessions_for, self.request.user, **params)
