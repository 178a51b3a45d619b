"""Django settings: everything comes from environment variables with safe development defaults."""

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from telemetry_site.env import env_bool, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
# Under pytest the suite runs tasks inline unless a test asks for a real worker.
TESTING = env_bool("TESTING", "pytest" in sys.modules)

_DEV_SECRET_KEY = "dev-only-insecure-key-change-me"  # refused when DEBUG=0
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY)
if not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random string of at least 32 characters when DEBUG=0."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000", schemes=("http", "https")).rstrip("/")
CSRF_TRUSTED_ORIGINS = [SITE_URL]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "telemetry_site",
    "accounts",
    "usage",
    "budgets",
    "dashboards",
]

MIDDLEWARE = [
    # First, so the request durations at /metrics include every other middleware.
    "telemetry_site.metrics.server.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.AdmittedSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.ViewerTimezoneMiddleware",
    "accounts.middleware.LastActivityMiddleware",
]

ROOT_URLCONF = "telemetry_site.urls"
WSGI_APPLICATION = "telemetry_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.membership",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_default_db = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASE_URL = env_url(
    "DATABASE_URL", _default_db, schemes=("sqlite", "postgres", "postgresql", "pgsql")
)
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL and a busy timeout let the web process, the worker and beat share one file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Redis: Celery broker and cache ----------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    env_url("REDIS_URL", REDIS_URL, schemes=("redis", "rediss", "unix"))
    CACHES = {
        "default": {
            # Counts in process memory while Redis is down (telemetry_site.cache).
            "BACKEND": "telemetry_site.cache.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "cct"),
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # Longer than any retry countdown, so a delayed task is never redelivered early. It is
    # also how long a task a dead worker held waits before another worker gets it.
    _visibility_timeout = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "visibility_timeout": _visibility_timeout,
        # Look for such tasks every few seconds (kombu's default is every ~100 s).
        "unacked_restore_interval": max(1, min(10, _visibility_timeout // 2)),
        "unacked_restore_throttle": 1,
        # A Redis that does not answer fails a publish in seconds; the request goes on
        # (telemetry_site.queueing) and the beat sweeps catch up.
        "socket_connect_timeout": 2,
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "cache_entries",
        }
    }
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast messages (worker control) would otherwise land in ./control.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }

# --- Celery ---------------------------------------------------------------------------------
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", TESTING)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The whole beat schedule lives here, in code, so it is reviewed like any other change.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "sweep-unprocessed-ingest": {
        "task": "usage.tasks.sweep_derived_work",
        "schedule": timedelta(minutes=5),
    },
    # Rollup changes ingest appended (PostgreSQL) are folded in, so reads stay short.
    "fold-usage-rollups": {
        "task": "usage.tasks.fold_rollups",
        "schedule": timedelta(minutes=1),
    },
    "purge-expired-login-links": {
        "task": "accounts.tasks.purge_expired_login_links",
        "schedule": crontab(minute=17),
    },
    # Blocks stop being active as time passes, with no ingest to say so; machines moved in
    # the admin leave blocks on the wrong subscription until this recomputes them.
    "refresh-blocks": {
        "task": "usage.tasks.refresh_blocks",
        "schedule": timedelta(minutes=5),
    },
    # Periods roll over and agents go quiet without any ingest to trigger a budget check.
    "evaluate-budgets-and-alerts": {
        "task": "budgets.tasks.evaluate_all_teams",
        "schedule": timedelta(minutes=15),
    },
    # Re-queues alert deliveries whose retry was lost and resets ones a killed worker left.
    "sweep-alert-deliveries": {
        "task": "budgets.tasks.sweep_deliveries",
        "schedule": timedelta(minutes=2),
    },
    # Ingest batches left `received` (broker down when a big report was queued, a worker or
    # a request killed mid-way) are processed, or marked failed after too many attempts.
    "sweep-ingest-backlog": {
        "task": "usage.tasks.sweep_ingest_backlog",
        "schedule": timedelta(minutes=2),
    },
    # Refused report bodies are kept INGEST_REJECTED_RETENTION_DAYS, then deleted.
    "expire-rejected-ingest-bodies": {
        "task": "usage.tasks.expire_rejected_bodies",
        "schedule": crontab(hour=3, minute=41),
    },
    # Login emails the worker never got (broker down) or could not send (SMTP down) yet.
    "sweep-login-mail": {
        "task": "accounts.tasks.sweep_login_mail",
        "schedule": timedelta(minutes=1),
    },
}

# --- Auth: magic links only (allauth login by code plus our cross-device link) --------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_BY_CODE_TIMEOUT = 15 * 60
ACCOUNT_LOGIN_BY_CODE_MAX_ATTEMPTS = 5
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[claude-telemetry] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SITE_URL.startswith("https") else "http"
# Asking for a link is limited per address (key) and per client IP; using one, per IP.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "request_login_code": "20/m/ip,100/h/ip,3/m/key,10/h/key",
}
# Unknown addresses get no email at all: the page says the same, and nobody is spammed.
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
# Behind a reverse proxy set this to the number of proxies, so rate limits see client IPs.
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
MAGIC_LINK_MAX_AGE = 15 * 60
ACCOUNT_LOGIN_TIMEOUT = MAGIC_LINK_MAX_AGE

# --- REST API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["telemetry_site.api.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_THROTTLE_RATES": {
        "ingest": env_str("INGEST_THROTTLE_RATE", "120/minute"),
        "read": env_str("READ_THROTTLE_RATE", "600/minute"),
        # Wrong, revoked or expired tokens per client address (accounts.auth).
        "auth_failed": env_str("AUTH_FAILED_THROTTLE_RATE", "30/minute"),
    },
    # Client addresses come from X-Forwarded-For only behind this many trusted proxies.
    "NUM_PROXIES": ALLAUTH_TRUSTED_PROXY_COUNT,
    "EXCEPTION_HANDLER": "telemetry_site.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "claude-telemetry API",
    "DESCRIPTION": "Ingest ccusage reports and read a team's AI-coding usage.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page loads Redoc from our own static files: CSP and offline installs forbid CDNs.
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 20 * 1024 * 1024, minimum=1024)
INGEST_MAX_DECOMPRESSED_BYTES = env_int(
    "INGEST_MAX_DECOMPRESSED_BYTES", 100 * 1024 * 1024, minimum=1024
)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES
# Bodies larger than this (decompressed) are archived, answered 202 with the batch id and
# processed by the worker, so a big first sync never meets the web server's timeout
# (docs/ingest.md, "Big reports").
INGEST_ASYNC_BODY_BYTES = env_int("INGEST_ASYNC_BODY_BYTES", 4 * 1024 * 1024, minimum=0)
# A batch still `received` this long after it arrived or was last taken (broker down when it
# was queued, worker killed, request timed out) is processed by the backlog sweep. Longer
# than CELERY_TASK_TIME_LIMIT, so a batch still being worked on is never taken twice.
INGEST_BACKLOG_GRACE_SECONDS = env_int("INGEST_BACKLOG_GRACE_SECONDS", 600, minimum=1)
# Attempts at a batch that never finish (the worker dies or times out each time) before it is
# marked failed with the reason; `reprocess_batches --failed` can still replay it.
INGEST_BACKLOG_MAX_ATTEMPTS = env_int("INGEST_BACKLOG_MAX_ATTEMPTS", 3, minimum=1)
# Bodies refused for their content: one copy per distinct body, at most this many archived
# (gzip) bytes per team, beyond which only the metadata and reason are kept; deleted after
# this many days (docs/ingest.md, "Refused reports").
INGEST_REJECTED_MAX_BYTES_PER_TEAM = env_int(
    "INGEST_REJECTED_MAX_BYTES_PER_TEAM", 100 * 1024 * 1024, minimum=0
)
INGEST_REJECTED_RETENTION_DAYS = env_int("INGEST_REJECTED_RETENTION_DAYS", 30, minimum=1)
# Budget and quota checks after ingest run at most once per team per this many seconds: the
# first ingest is checked at once, those that follow within the window together at its end
# (budgets.receivers). 0 checks after every ingest.
BUDGET_EVALUATION_DEBOUNCE_SECONDS = env_int("BUDGET_EVALUATION_DEBOUNCE_SECONDS", 10, minimum=0)

# --- Prometheus exposition at /metrics (docs/metrics.md) ----------------------------------
# Projects and models past these many (by all-time cost) are summed into one "other" series.
METRICS_TOP_PROJECTS = env_int("METRICS_TOP_PROJECTS", 20, minimum=1)
METRICS_TOP_MODELS = env_int("METRICS_TOP_MODELS", 20, minimum=1)

# --- Email ---------------------------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "claude-telemetry <telemetry@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Outgoing webhooks ---------------------------------------------------------------------
WEBHOOK_ALLOW_PRIVATE_IPS = env_bool("WEBHOOK_ALLOW_PRIVATE_IPS", False)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
# Attempts before an alert delivery fails for good (a failing webhook channel is then disabled).
ALERT_DELIVERY_MAX_ATTEMPTS = env_int("ALERT_DELIVERY_MAX_ATTEMPTS", 8, minimum=1)

# --- Internationalisation: UTC in the database, the viewer's zone on the page ---------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Static files --------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security ------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # /healthz is probed over plain HTTP by load balancers.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Logging -------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} is not a logging level.")
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be 'text' or 'json'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "telemetry_site.jsonlog.JsonFormatter"},
        "text": {
            "()": "telemetry_site.jsonlog.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own defaults would print a second copy, unredacted (telemetry_site.jsonlog).
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "django.security.DisallowedHost": {"level": "ERROR"},
    },
}

# whitenoise and the file-based email backend expect their folders to exist.
for _folder in (VAR_DIR, STATIC_ROOT):
    _folder.mkdir(parents=True, exist_ok=True)
