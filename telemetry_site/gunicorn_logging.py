"""gunicorn's access log without secrets: `--logger-class telemetry_site.gunicorn_logging.Logger`
(Procfile.production and the systemd unit pass it)."""

from gunicorn.glogging import Logger as GunicornLogger

from telemetry_site.jsonlog import redact_secrets


class Logger(GunicornLogger):
    """Every access-log field (request line, path, referer, headers) goes through
    telemetry_site.jsonlog.redact_secrets."""

    def atoms(self, resp, req, environ, request_time):
        fields = super().atoms(resp, req, environ, request_time)
        return {
            key: redact_secrets(value) if isinstance(value, str) else value
            for key, value in fields.items()
        }
