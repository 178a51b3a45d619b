"""GET /api/v1/machines/ and /api/v1/machines/<uuid>/: the machines a viewer may see; PATCH
/api/v1/machines/<uuid>/ renames one (usage.naming's rules)."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.response import Response

from accounts.access import Viewer
from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.pagination import Pagination
from telemetry_site.api.permissions import SessionOnly
from telemetry_site.api.views import ReadView, path_uuid, validated
from usage import queries
from usage.api.common import (
    SCOPE_HELP,
    CountsSerializer,
    MemberRefSerializer,
    SubscriptionRefSerializer,
    query_call,
)
from usage.models import Machine
from usage.naming import NAME_MAX, MachineNameError, rename_machine


class MachineSerializer(serializers.ModelSerializer):
    owner = MemberRefSerializer()
    subscription = SubscriptionRefSerializer()
    last_sync_counts = serializers.DictField(child=CountsSerializer())

    class Meta:
        model = Machine
        fields = [
            "uuid",
            "name",
            "hostname",
            "os",
            "agent_version",
            "ccusage_version",
            "timezone",
            "owner",
            "subscription",
            "first_seen_at",
            "last_seen_at",
            "last_sync_status",
            "last_sync_error",
            "last_sync_counts",
            "retired_at",
        ]


class MachineQuerySerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=queries.SCOPES, default="me", help_text=SCOPE_HELP)
    member = serializers.CharField(required=False, max_length=254)
    order = serializers.ChoiceField(choices=tuple(queries.MACHINE_ORDERS), default="name")


class MachineListView(ReadView, generics.ListAPIView):
    serializer_class = MachineSerializer
    pagination_class = Pagination

    @extend_schema(
        operation_id="machines_list",
        tags=["machines"],
        summary="Machines you may see",
        parameters=[MachineQuerySerializer, RETRY_AFTER],
        responses={200: MachineSerializer(many=True), **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = validated(MachineQuerySerializer, self.request)
        return query_call(queries.machines_for, self.request.user, **params)


class MachineRenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=NAME_MAX, help_text="The machine's new name.")


class MachineDetailView(ReadView, generics.RetrieveAPIView):
    """GET one machine; PATCH its name (a logged-in session of its owner or a team admin,
    like the machines page; a name another machine of the account has is a 400)."""

    serializer_class = MachineSerializer

    def get_permissions(self):
        if self.request.method == "PATCH":
            # Renaming changes what the team sees: a browser session, never a read token.
            return [SessionOnly()]
        return super().get_permissions()

    @extend_schema(
        operation_id="machines_rename",
        tags=["machines"],
        summary="Rename a machine",
        request=MachineRenameSerializer,
        responses={200: MachineSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def patch(self, request, *args, **kwargs):
        machine = self.get_object()
        if not Viewer.of(request.user).may_manage(machine):
            # Seeing a colleague's machine is not managing it; as on the machines page, 404.
            raise exceptions.NotFound("No such machine.")
        body = MachineRenameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            rename_machine(machine, body.validated_data["name"])
        except MachineNameError as exc:
            raise exceptions.ValidationError({"name": [str(exc)]}) from None
        return Response(MachineSerializer(machine).data)

    @extend_schema(
        operation_id="machines_retrieve",
        tags=["machines"],
        summary="One machine",
        parameters=[RETRY_AFTER],
        responses={200: MachineSerializer, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_object(self):
        machine = get_object_or_404(
            Machine.objects.select_related("owner", "subscription"),
            uuid=path_uuid(self.kwargs["uuid"]),
        )
        try:
            return queries.resolve_machine(self.request.user, machine)
        except (Http404, PermissionDenied):
            # A colleague's machine you may not see is simply not yours: 404, like a stranger's.
            raise exceptions.NotFound("No such machine.") from None
