"""Shared fixtures: the fixed cast (owner, admin, member of team A; an outsider in team B)."""

import json
from contextlib import contextmanager
from pathlib import Path

import kombu.pools
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connections
from django.db.models.signals import post_migrate
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import AllowedEmail, ApiToken, Role, Team, User
from telemetry_site.celery import app as celery_app
from telemetry_site.synthetic_logs import parse_anchor, write_home
from tests.factories import MembershipFactory, TeamFactory

ROOT = Path(__file__).resolve().parent.parent
# ccusage's recorded outputs on the project's synthetic logs (see its README.md).
FIXTURES = ROOT / "tests" / "fixtures" / "ccusage"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    # The embedded default cache is a database table; the test database needs it too.
    with django_db_blocker.unblock():
        call_command("createcachetable", verbosity=0)


def _clear_rollups_after_a_flush(using, **kwargs) -> None:
    """After a transactional test, the flush empties SQLite's tables in no fixed order (Django
    lists them from a set): facts deleted after their rollups and before their machines fire
    the row triggers, which write negative rollup rows for a later test to find. A flush
    sends post_migrate once it is done; PostgreSQL's flush truncates and fires no trigger."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    # A migration to before the rollups sends post_migrate too.
    if "usage_usagerollup" in connection.introspection.table_names():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM usage_usagerollup")


post_migrate.connect(_clear_rollups_after_a_flush, dispatch_uid="tests-clear-rollups-after-flush")

_DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "live_server"}


@pytest.fixture(autouse=True)
def _clear_cache(request):
    # Throttles and allauth's rate limits live in the cache; no test inherits another's counts.
    # The embedded cache is a database table, so only tests that use the database clear it.
    uses_db = request.node.get_closest_marker("django_db") or _DB_FIXTURES & set(
        request.fixturenames
    )
    if uses_db:
        cache.clear()
    yield


def make_member(team: Team, email: str, role: str) -> User:
    user = MembershipFactory(user__email=email, team=team, role=role).user
    AllowedEmail.objects.create(pattern=email, team=team, role=role)
    return user


@pytest.fixture
def team_a(db) -> Team:
    return TeamFactory(name="Team A", slug="team-a", timezone="UTC")


@pytest.fixture
def team_b(db) -> Team:
    return TeamFactory(name="Team B", slug="team-b", timezone="Europe/Paris")


@pytest.fixture
def owner(team_a) -> User:
    return make_member(team_a, "owner@a.example", Role.OWNER)


@pytest.fixture
def admin(team_a) -> User:
    return make_member(team_a, "admin@a.example", Role.ADMIN)


@pytest.fixture
def member(team_a) -> User:
    return make_member(team_a, "member@a.example", Role.MEMBER)


@pytest.fixture
def outsider(team_b) -> User:
    return make_member(team_b, "outsider@b.example", Role.OWNER)


@pytest.fixture
def cast(owner, admin, member, outsider) -> dict[str, User]:
    return {"owner": owner, "admin": admin, "member": member, "outsider": outsider}


def token_for(user: User, scopes=("ingest", "read"), name: str = "test") -> str:
    _, raw = ApiToken.issue(user, name, list(scopes))
    return raw


def login(user: User | None) -> Client:
    """A browser client with `user` logged in (None: anonymous)."""
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def api_client(raw_token: str | None = None) -> APIClient:
    client = APIClient()
    if raw_token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    return client


def fixture_manifest() -> dict:
    """Anchor, seed and session roles of the recorded fixture set."""
    return json.loads((FIXTURES / "MANIFEST.json").read_text())


def write_fixture_input(home: Path) -> Path:
    """Write the synthetic $HOME the fixtures were recorded from again (the same bytes)."""
    manifest = fixture_manifest()
    anchor = parse_anchor(manifest["anchor"])
    written = write_home(home, anchor=anchor, seed=manifest["seed"], days=manifest["days"])
    # A generator change that alters the logs needs the outputs recorded again.
    assert written["sha256"] == manifest["sha256"], "re-run scripts/record_ccusage_fixtures.py"
    return home


@pytest.fixture(scope="session")
def fixture_input_home(tmp_path_factory) -> Path:
    """The fixtures' input logs, written once per run; read-only (tests that change files copy)."""
    return write_fixture_input(tmp_path_factory.mktemp("ccusage-input") / "home")


@pytest.fixture(scope="session")
def fixtures_dir(tmp_path_factory, fixture_input_home) -> Path:
    """The whole fixture set as one folder: the recorded outputs and the input under input/home."""
    folder = tmp_path_factory.mktemp("ccusage-fixtures")
    for entry in FIXTURES.iterdir():
        (folder / entry.name).symlink_to(entry)
    (folder / "input").mkdir()
    (folder / "input" / "home").symlink_to(fixture_input_home, target_is_directory=True)
    return folder


def _reset_celery_pools() -> None:
    # Celery keeps its connection and producer pools in kombu's global registry, keyed by
    # broker URL: empty the registry and drop the app's references, or later tests publish
    # through a pool of an earlier broker (or one already closed).
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def celery_broker(url: str, *, eager: bool = False, transport_options: dict | None = None):
    """Point Celery at another broker (e.g. one nobody listens on) and restore it after."""
    keys = ("task_always_eager", "broker_url", "broker_transport_options")
    saved = {key: celery_app.conf[key] for key in keys}
    _reset_celery_pools()
    celery_app.conf.update(
        task_always_eager=eager,
        broker_url=url,
        broker_transport_options=transport_options or {},
    )
    try:
        yield celery_app
    finally:
        _reset_celery_pools()
        celery_app.conf.update(saved)


# A port nothing listens on: publishing fails fast after kombu's short retry policy.
DEAD_BROKER_URL = "redis://127.0.0.1:1/0"
