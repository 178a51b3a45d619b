"""REST API of usage: ingest, usage totals, machines, sessions and projects (under /api/v1/).

Views are thin: ingest work is in usage.ingest, visibility and aggregation in usage.queries.
Every error is JSON: {"detail", "errors": {path: [reasons]}} for bad input.
"""

import logging
import uuid

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, generics, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from accounts.access import is_team_admin, team_of
from accounts.auth import BearerTokenAuthentication, SessionOnly, TokenHasScope
from accounts.models import ApiToken
from usage import ingest, queries
from usage.models import Machine, Project, SessionUsage

log = logging.getLogger(__name__)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer cct_…` in the schema (accounts.auth has no schema)."""

    target_class = "accounts.auth.BearerTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "cct_…",
            "description": "A personal API token (scopes: ingest, read), made on the tokens "
            "page or with `manage.py create_api_token`.",
        }


# --- throttles -------------------------------------------------------------------------------
class TokenRateThrottle(SimpleRateThrottle):
    """Counts requests per API token (per user for browser sessions)."""

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IngestThrottle(TokenRateThrottle):
    scope = "ingest"


class ReadThrottle(TokenRateThrottle):
    scope = "read"


class Pagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


# --- error bodies (documentation and shape) ---------------------------------------------------
class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Reasons by field or JSON path, e.g. `reports.claude_session.sessions[3]"
        ".totalCost`.",
    )


class IngestErrorSerializer(ErrorSerializer):
    batch_id = serializers.UUIDField(
        required=False,
        help_text="The archived batch, when the body was archived before it was refused.",
    )


RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before the next request.",
)


def _errors(*codes: int, error=ErrorSerializer) -> dict:
    text = {
        400: "Invalid input: `errors` names each bad field or JSON path.",
        401: "Missing, malformed, unknown, revoked or expired token.",
        403: "The token lacks the scope, or the role does not allow this.",
        404: "Not found, or not yours.",
        409: "The machine UUID belongs to another user.",
        413: "The body (compressed or inflated) is larger than the limit.",
        415: "Unsupported Content-Encoding (use gzip or none).",
        429: "Too many requests for this token; see Retry-After.",
    }
    return {code: OpenApiResponse(error, description=text[code]) for code in codes}


def _money(value) -> str:
    """A cost as a decimal string, trailing zeros trimmed to at least cents."""
    text = format(value, "f")
    if "." in text:
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0").ljust(2, "0")
        text = f"{whole}.{fraction}"
    return text


class MoneyField(serializers.DecimalField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 30)
        kwargs.setdefault("decimal_places", 10)
        kwargs.setdefault("help_text", "US dollars as a decimal string (never a float).")
        super().__init__(**kwargs)

    def to_representation(self, value):
        return _money(value)


# --- ingest ----------------------------------------------------------------------------------
class MachineIdentitySerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="Generated once by the agent on this PC.")
    name = serializers.CharField(max_length=100, required=False)
    hostname = serializers.CharField(max_length=255, required=False, allow_blank=True)
    os = serializers.CharField(max_length=100, required=False, allow_blank=True)
    agent_version = serializers.CharField(max_length=40, required=False, allow_blank=True)
    ccusage_version = serializers.CharField(
        max_length=40,
        required=False,
        allow_blank=True,
        help_text="Chooses the report parsers: 18.x/19.x shapes or 20.x and newer.",
    )
    timezone = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="The IANA timezone passed to ccusage --timezone.",
    )


class RateLimitWindowSerializer(serializers.Serializer):
    used_percentage = serializers.FloatField(min_value=0, max_value=1000)
    resets_at = serializers.CharField(help_text="ISO 8601 time, or unix seconds.")


class StatuslineCaptureSerializer(serializers.Serializer):
    captured_at = serializers.DateTimeField()
    session_id = serializers.CharField(required=False)
    model = serializers.JSONField(required=False)
    rate_limits = serializers.DictField(
        child=RateLimitWindowSerializer(),
        required=False,
        help_text="`five_hour`, `seven_day` and any other window, e.g. `seven_day_opus`.",
    )


class ReportsSerializer(serializers.Serializer):
    claude_daily_instances = serializers.JSONField(
        required=False, help_text="stdout of `ccusage claude daily --json --instances --offline`"
    )
    claude_session = serializers.JSONField(
        required=False, help_text="stdout of `ccusage claude session --json --offline`"
    )
    blocks_hourly = serializers.JSONField(
        required=False,
        help_text="stdout of `ccusage blocks --json --session-length 1 --offline`",
    )
    daily_by_agent = serializers.JSONField(
        required=False,
        help_text="stdout of `ccusage daily --json --by-agent --offline`; Claude rows are "
        "skipped (they come from claude_daily_instances).",
    )
    statusline = StatuslineCaptureSerializer(many=True, required=False)


class ProjectInfoSerializer(serializers.Serializer):
    cwd = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    git_remote = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    hashed = serializers.BooleanField(required=False)


class EnvelopeSerializer(serializers.Serializer):
    schema = serializers.IntegerField(min_value=1, max_value=1)
    machine = MachineIdentitySerializer()
    full = serializers.BooleanField(
        required=False, help_text="True when the reports cover the whole history."
    )
    since = serializers.DateField(
        required=False, allow_null=True, help_text="First day of an incremental window."
    )
    reports = ReportsSerializer()
    projects = serializers.DictField(
        child=ProjectInfoSerializer(),
        required=False,
        help_text="Per ccusage project key: the real folder and git remote, for names.",
    )


class CountsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    removed = serializers.IntegerField(
        help_text="Daily facts inside the report's window that the report no longer has "
        "(e.g. after a timezone change): deleted so nothing counts twice."
    )


class IngestMachineSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    name = serializers.CharField()
    subscription = serializers.UUIDField(help_text="The Claude account this machine uses.")


class IngestResponseSerializer(serializers.Serializer):
    batch_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["processed"])
    duplicate = serializers.BooleanField(
        help_text="True when this exact body was already processed; nothing changed."
    )
    machine = IngestMachineSerializer()
    timezone = serializers.CharField(
        help_text="The team's reporting timezone: pass it to ccusage --timezone next time."
    )
    counts = serializers.DictField(child=CountsSerializer(), help_text="Per report kind.")
    last_day = serializers.DateField(
        allow_null=True, help_text="The latest day the server holds for this machine."
    )


def ingest_response(result: ingest.IngestResult) -> dict:
    return {
        "batch_id": str(result.batch.public_id),
        "status": "processed",
        "duplicate": result.duplicate,
        "machine": {
            "uuid": str(result.machine.uuid),
            "name": result.machine.name,
            "subscription": str(result.machine.subscription.public_id),
        },
        "timezone": result.timezone,
        "counts": result.counts,
        "last_day": result.last_day.isoformat() if result.last_day else None,
    }


def _ingest_error(exc: ingest.IngestError) -> Response:
    body = {"detail": exc.detail}
    if exc.errors:
        body["errors"] = exc.errors
    if exc.batch is not None:
        body["batch_id"] = str(exc.batch.public_id)
    return Response(body, status=exc.status)


class IngestView(APIView):
    """POST a machine's ccusage reports; answers with what was stored."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [TokenHasScope]
    required_scope = "ingest"
    throttle_classes = [IngestThrottle]

    @extend_schema(
        operation_id="ingest",
        tags=["ingest"],
        summary="Send a machine's ccusage reports",
        description=(
            "JSON, optionally `Content-Encoding: gzip`. The body is archived before parsing; "
            "parsing and storing is all or nothing. Each fact is replaced by the most recently "
            "received report; days absent from a report are kept. A body identical to one "
            "already processed answers `duplicate: true` and changes nothing. The first "
            "report of a new machine UUID registers it to the token's owner."
        ),
        request=EnvelopeSerializer,
        parameters=[
            OpenApiParameter(
                "Content-Encoding",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                enum=["gzip", "identity"],
                required=False,
            ),
            RETRY_AFTER,
        ],
        responses={
            200: OpenApiResponse(IngestResponseSerializer, description="Duplicate body."),
            201: OpenApiResponse(IngestResponseSerializer, description="Stored."),
            **_errors(400, 409, 413, 415, error=IngestErrorSerializer),
            **_errors(401, 403, 429),
        },
    )
    def post(self, request):
        user = request.user
        if team_of(user) is None:
            raise exceptions.PermissionDenied(
                "Your account belongs to no team, so its usage has nowhere to go; "
                "ask a team admin to add you."
            )
        django_request = request._request
        try:
            raw = ingest.read_body(django_request, django_request.META.get("CONTENT_LENGTH"))
            body, gzipped = ingest.decode_body(
                raw, django_request.META.get("HTTP_CONTENT_ENCODING")
            )
        except ingest.IngestError as exc:
            log.info("ingest body refused", extra={"user": user.pk, "error": exc.detail})
            return _ingest_error(exc)
        duplicate = ingest.find_duplicate(user, body)
        if duplicate is not None:
            return Response(ingest_response(ingest.answer_duplicate(duplicate)))
        batch = ingest.archive(user, request.auth, body, gzipped)
        try:
            result = ingest.process_batch(batch, body=body)
        except ingest.IngestError as exc:
            return _ingest_error(exc)
        except Exception:
            # Logged with its traceback by process_batch; the body is safe in the archive.
            return Response(
                {
                    "detail": "The report was archived but could not be processed; "
                    "it will be reprocessed after a fix. Keep it and retry later.",
                    "batch_id": str(batch.public_id),
                },
                status=status.HTTP_500_INTERNAL_SERVER_ERROR,
            )
        return Response(ingest_response(result), status=status.HTTP_201_CREATED)


# --- read views ------------------------------------------------------------------------------
def _path_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise exceptions.NotFound("Not found.") from None


class ReadView:
    permission_classes = [TokenHasScope]
    required_scope = "read"
    throttle_classes = [ReadThrottle]


def _query_call(fn, *args, **kwargs):
    """Run a queries function, turning its QueryError into a 400 naming the parameter."""
    try:
        return fn(*args, **kwargs)
    except queries.QueryError as exc:
        raise exceptions.ValidationError({exc.param: [exc.message]}) from None


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return {k: v for k, v in serializer.validated_data.items() if v not in (None, "")}


SCOPE_HELP = (
    "`me` (default): your machines; `team`: every machine of your team. A `machine` or "
    "`member` filter chooses whose data instead."
)


class UsageQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=queries.GROUP_BY, default="day")
    since = serializers.DateField(required=False, help_text="First reporting day, inclusive.")
    until = serializers.DateField(required=False, help_text="Last reporting day, inclusive.")
    scope = serializers.ChoiceField(choices=queries.SCOPES, default="me", help_text=SCOPE_HELP)
    machine = serializers.UUIDField(required=False)
    project = serializers.CharField(
        required=False, max_length=500, help_text="Project public id or ccusage key."
    )
    model = serializers.CharField(required=False, max_length=200)
    member = serializers.CharField(
        required=False, max_length=254, help_text="Member public id or email."
    )
    source = serializers.CharField(
        required=False, max_length=40, help_text="claude-code, codex, opencode, …"
    )

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["must not be before since"]})
        return attrs


class UsageFigures(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_creation_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = MoneyField()


class UsageRowSerializer(UsageFigures):
    key = serializers.CharField(
        help_text="Day or week start (YYYY-MM-DD), month (YYYY-MM), public id, model or source."
    )
    label = serializers.CharField(help_text="A readable name for the key.")


class UsageResponseSerializer(serializers.Serializer):
    results = UsageRowSerializer(many=True)
    totals = UsageFigures()


class UsageView(ReadView, APIView):
    @extend_schema(
        operation_id="usage",
        tags=["usage"],
        summary="Token and cost totals, grouped",
        parameters=[UsageQuerySerializer, RETRY_AFTER],
        responses={200: UsageResponseSerializer, **_errors(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = _validated(UsageQuerySerializer, request)
        data = _query_call(queries.aggregate_usage, request.user, **params)
        return Response(UsageResponseSerializer(data).data)


class MemberRefSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    email = serializers.EmailField()
    name = serializers.CharField(source="display_name")


class SubscriptionRefSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    label = serializers.CharField()
    plan = serializers.CharField()


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
        responses={200: MachineSerializer(many=True), **_errors(400, 401, 403, 404, 429)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = _validated(MachineQuerySerializer, self.request)
        return _query_call(queries.machines_for, self.request.user, **params)


class MachineDetailView(ReadView, generics.RetrieveAPIView):
    serializer_class = MachineSerializer

    @extend_schema(
        operation_id="machines_retrieve",
        tags=["machines"],
        summary="One machine",
        parameters=[RETRY_AFTER],
        responses={200: MachineSerializer, **_errors(401, 403, 404, 429)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_object(self):
        machine = get_object_or_404(
            Machine.objects.select_related("owner", "subscription"),
            uuid=_path_uuid(self.kwargs["uuid"]),
        )
        try:
            return queries.resolve_machine(self.request.user, machine)
        except (Http404, PermissionDenied):
            # A colleague's machine you may not see is simply not yours: 404, like a stranger's.
            raise exceptions.NotFound("No such machine.") from None


class MachineRefSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    name = serializers.CharField()


class ProjectRefSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    key = serializers.CharField()
    name = serializers.CharField(source="display_name")


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
    source = serializers.CharField(required=False, max_length=40)
    since = serializers.DateField(required=False, help_text="Last activity on or after this day.")
    until = serializers.DateField(required=False, help_text="Last activity on or before this day.")
    order = serializers.ChoiceField(choices=tuple(queries.SESSION_ORDERS), default="-last_activity")


class SessionListView(ReadView, generics.ListAPIView):
    serializer_class = SessionSerializer
    pagination_class = Pagination

    @extend_schema(
        operation_id="sessions_list",
        tags=["sessions"],
        summary="Sessions, newest first by default",
        parameters=[SessionQuerySerializer, RETRY_AFTER],
        responses={200: SessionSerializer(many=True), **_errors(400, 401, 403, 404, 429)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = _validated(SessionQuerySerializer, self.request)
        return _query_call(queries.sessions_for, self.request.user, **params)


# --- projects --------------------------------------------------------------------------------
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
        fields = ["public_id", "key", "name", "alias_of", "cwd", "git_remote", "created_at"]


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
        responses={200: ProjectSerializer(many=True), **_errors(401, 403, 429)},
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
        return get_object_or_404(
            queries.projects_for(request.user), public_id=_path_uuid(public_id)
        )

    @extend_schema(
        operation_id="projects_retrieve",
        tags=["projects"],
        summary="One project",
        parameters=[RETRY_AFTER],
        responses={200: ProjectSerializer, **_errors(401, 403, 404, 429)},
    )
    def get(self, request, public_id):
        return Response(ProjectSerializer(self._project(request, public_id)).data)

    @extend_schema(
        operation_id="projects_update",
        tags=["projects"],
        summary="Rename a project or group it under another (admins, session only)",
        request=ProjectUpdateSerializer,
        parameters=[RETRY_AFTER],
        responses={200: ProjectSerializer, **_errors(400, 401, 403, 404, 429)},
    )
    def patch(self, request, public_id):
        project = self._project(request, public_id)
        if not is_team_admin(request.user):
            raise exceptions.PermissionDenied("Only team admins manage projects.")
        serializer = ProjectUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "name" in data:
            project.display_name = data["name"].strip() or project.display_name
            project.save(update_fields=["display_name"])
        if "alias_of" in data:
            target = None
            if data["alias_of"] is not None:
                target = (
                    queries.projects_for(request.user).filter(public_id=data["alias_of"]).first()
                )
                if target is None:
                    raise exceptions.ValidationError({"alias_of": ["no such project in your team"]})
            try:
                project.set_alias(target)
            except ValueError as exc:
                raise exceptions.ValidationError({"alias_of": [str(exc)]}) from None
            log.info(
                "project alias changed",
                extra={
                    "project": str(project.public_id),
                    "alias_of": str(target.public_id) if target else None,
                    "by": request.user.pk,
                },
            )
        project.refresh_from_db()
        return Response(ProjectSerializer(project).data)
