"""OpenAPI additions: the bearer-token scheme of accounts.auth (named by path, not imported)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer cct_…` in the schema."""

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
