"""The project's URLs plus three small API views, so token rules are tested through real DRF."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from telemetry_site.api.permissions import SessionOnly, TokenHasScope
from telemetry_site.urls import urlpatterns as project_urlpatterns


class ReadProbe(APIView):
    permission_classes = [TokenHasScope]
    required_scope = "read"

    def get(self, request):
        return Response({"user": request.user.email})

    def post(self, request):
        return Response({"user": request.user.email})


class IngestProbe(ReadProbe):
    required_scope = "ingest"


class SessionOnlyProbe(APIView):
    permission_classes = [SessionOnly]

    def get(self, request):
        return Response({"user": request.user.email})


urlpatterns = [
    path("probe/read/", ReadProbe.as_view()),
    path("probe/ingest/", IngestProbe.as_view()),
    path("probe/session-only/", SessionOnlyProbe.as_view()),
    *project_urlpatterns,
]
