"""GET /api/v1/projects/ (the team's projects) and /api/v1/projects/<id>/ (read; PATCH to
rename or group under another project: team admins, from a logged-in session)."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import is_team_admin
from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.pagination import Pagination
from telemetry_site.api.permissions import SessionOnly
from telemetry_site.api.views import ReadView, path_uuid
from usage import projects, queries
from usage.models import Project


class ProjectSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name")
    alias_of = serializers.UUIDField(
        source="alias_of.public_id",
        read_only=True,
        allow_null=True,
        help_text="The project this key is grouped under, if any.",
    )

    class Meta:
        model = Project
        fields = [
            "public_id",
            "key",
            "name",
            "alias_of",
            "keep_apart",
            "cwd",
            "git_remote",
            "created_at",
        ]


class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    alias_of = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="Group this key under another project of the team (null ungroups it).",
    )


class ProjectListView(ReadView, generics.ListAPIView):
    serializer_class = ProjectSerializer
    pagination_class = Pagination

    @extend_schema(
        operation_id="projects_list",
        tags=["projects"],
        summary="Your team's projects",
        parameters=[RETRY_AFTER],
        responses={200: ProjectSerializer(many=True), **error_responses(401, 403, 429)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return queries.projects_for(self.request.user)


class ProjectDetailView(ReadView, APIView):
    """Read a project; team admins rename it or group it under another (session only)."""

    def get_permissions(self):
        if self.request.method == "PATCH":
            # Managing the team's projects takes a logged-in admin, never a token.
            return [SessionOnly()]
        return super().get_permissions()

    def _project(self, request, public_id) -> Project:
        return get_object_or_404(queries.projects_for(request.user), public_id=path_uuid(public_id))

    @extend_schema(
        operation_id="projects_retrieve",
        tags=["projects"],
        summary="One project",
        parameters=[RETRY_AFTER],
        responses={200: ProjectSerializer, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request, public_id):
        return Response(ProjectSerializer(self._project(request, public_id)).data)

    @extend_schema(
        operation_id="projects_update",
        tags=["projects"],
        summary="Rename a project or group it under another (admins, session only)",
        request=ProjectUpdateSerializer,
        parameters=[RETRY_AFTER],
        responses={200: ProjectSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def patch(self, request, public_id):
        project = self._project(request, public_id)
        if not is_team_admin(request.user):
            raise exceptions.PermissionDenied("Only team admins manage projects.")
        serializer = ProjectUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # Both changes or neither: a refused grouping must not leave a new name behind.
        with transaction.atomic():
            if "name" in data:
                try:
                    projects.rename(project, data["name"], by=request.user)
                except ValueError as exc:
                    raise exceptions.ValidationError({"name": [str(exc)]}) from None
            if "alias_of" in data:
                target = None
                if data["alias_of"] is not None:
                    target = (
                        queries.projects_for(request.user)
                        .filter(public_id=data["alias_of"])
                        .first()
                    )
                    if target is None:
                        raise exceptions.ValidationError(
                            {"alias_of": ["no such project in your team"]}
                        )
                try:
                    projects.regroup(project, target, by=request.user)
                except ValueError as exc:
                    raise exceptions.ValidationError({"alias_of": [str(exc)]}) from None
        project.refresh_from_db()
        return Response(ProjectSerializer(project).data)
