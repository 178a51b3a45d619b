"""Project names and identity at ingest: names from the key or the agent, remotes normalised
without credentials, and one repository under two folders counted as one project."""

import importlib
import uuid
from decimal import Decimal

import pytest
from django.apps import apps

from tests.conftest import api_client, token_for
from tests.usage.ingest.helpers import USAGE_URL, envelope, post
from usage.models import DailyUsage, Project, legacy_project_name, readable_project_name
from usage.projects import group_same_remotes, normalise_git_remote, regroup, strip_credentials

pytestmark = pytest.mark.django_db

SONNET = "claude-sonnet-4-5-20250929"


def daily_report(*projects: tuple[str, int, float]) -> dict:
    """A `ccusage daily --instances` report: one day, one model, per (key, tokens, cost)."""
    return {
        "claude_daily_instances": {
            "projects": {
                key: [
                    {
                        "date": "2026-11-20",
                        "modelBreakdowns": [
                            {
                                "modelName": SONNET,
                                "inputTokens": tokens,
                                "outputTokens": 0,
                                "cacheCreationTokens": 0,
                                "cacheReadTokens": 0,
                                "cost": cost,
                            }
                        ],
                    }
                ]
                for key, tokens, cost in projects
            },
            "totals": {},
        }
    }


def send(client, reports, projects=None, machine_uuid=None, name="laptop"):
    response = post(
        client,
        envelope(reports, projects=projects or {}, machine_uuid=machine_uuid, name=name),
    )
    assert response.status_code == 201, response.json()
    return response


# --- names -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("-home-dev-src-webapp", "webapp"),
        ("-home-dev-src-my-app", "my-app"),
        # `site.github.io`: the dots are dashes in the key, but no part is dropped.
        ("-home-dev-src-site-github-io", "site-github-io"),
        ("-Users-dev-code-acme-webapp", "acme-webapp"),
        ("C--Users-dev-source-repos-My-App", "My-App"),
        ("-home-dev-infra", "infra"),
        ("-workspace-webapp", "webapp"),
        ("-tmp-scratch", "tmp-scratch"),
        # `~/Проект`: all dashes in the key; the key, never the home folder's name.
        ("-home-dev-------", "-home-dev-------"),
        ("-home-dev-src-------2", "-home-dev-src-------2"),
        ("Unknown Project", "Unknown Project"),
        ("", "(no project)"),
    ],
)
def test_a_name_from_the_key_alone_keeps_dashes_and_never_names_the_home_folder(key, name):
    assert readable_project_name(key) == name


def test_without_paths_the_folder_name_the_agent_sends_names_the_project(owner):
    client = api_client(token_for(owner))
    keys = {
        "-home-dev-src-my-app": "my-app",
        "-home-dev-src-site-github-io": "site.github.io",
        "-home-dev-------": "Проект",
        "C--Users-dev-My-App": "My.App",
    }
    projects = {key: {"cwd": None, "git_remote": None, "name": name} for key, name in keys.items()}

    send(client, daily_report(*((key, 10, 0.01) for key in keys)), projects)

    assert dict(Project.objects.values_list("key", "display_name")) == keys


def test_a_windows_working_folder_names_the_project_by_its_last_part(owner):
    client = api_client(token_for(owner))
    key = "C--Users-dev-------"
    projects = {key: {"cwd": "C:\\Users\\dev\\Проект.v2", "git_remote": None}}

    send(client, daily_report((key, 10, 0.01)), projects)

    assert Project.objects.get(key=key).display_name == "Проект.v2"


def test_a_name_an_earlier_version_derived_from_the_key_is_improved(owner, team_a):
    key = "-home-dev-src-my-app"
    Project.objects.create(team=team_a, key=key, display_name=legacy_project_name(key))
    assert legacy_project_name(key) == "app"

    send(api_client(token_for(owner)), daily_report((key, 10, 0.01)))

    assert Project.objects.get(key=key).display_name == "my-app"


def test_a_name_an_admin_chose_is_kept(owner, team_a):
    key = "-home-dev-src-my-app"
    Project.objects.create(team=team_a, key=key, display_name="Customer portal")

    send(
        api_client(token_for(owner)),
        daily_report((key, 10, 0.01)),
        {key: {"cwd": "/home/dev/src/my-app"}},
    )

    assert Project.objects.get(key=key).display_name == "Customer portal"


# --- remotes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "remote",
    [
        "git@github.com:acme/webapp.git",
        "git@GitHub.com:acme/webapp",
        "https://github.com/acme/webapp",
        "https://github.com/acme/webapp.git",
        "https://github.com/acme/webapp/",
        "https://GITHUB.COM/acme/webapp.git/",
        "https://dev:ghp_secret@github.com/acme/webapp.git",
        "ssh://git@github.com/acme/webapp.git",
        "ssh://git@github.com:22/acme/webapp.git",
        "git+ssh://git@github.com/acme/webapp",
        "  https://github.com/acme/webapp\n",
    ],
)
def test_every_way_of_writing_one_remote_normalises_alike(remote):
    assert normalise_git_remote(remote) == "github.com/acme/webapp"


@pytest.mark.parametrize(
    ("remote", "normalised"),
    [
        ("https://github.com/acme/webapp-api", "github.com/acme/webapp-api"),
        ("https://gitlab.example.com/group/sub/Repo.git", "gitlab.example.com/group/sub/Repo"),
        ("/srv/git/webapp.git", "/srv/git/webapp"),
        ("file:///srv/git/webapp.git/", "/srv/git/webapp"),
        ("C:\\repos\\webapp.git", "C:\\repos\\webapp"),
        ("", ""),
    ],
)
def test_different_repositories_stay_different(remote, normalised):
    assert normalise_git_remote(remote) == normalised


def test_credentials_in_a_remote_are_never_stored_or_shown(owner, admin):
    client = api_client(token_for(owner))
    key = "-home-dev-src-webapp"
    remote = "https://dev:ghp_secret123@github.com/acme/webapp.git"

    send(
        client,
        daily_report((key, 10, 0.01)),
        {key: {"cwd": "/home/dev/src/webapp", "git_remote": remote}},
    )

    project = Project.objects.get(key=key)
    assert project.git_remote == "https://github.com/acme/webapp.git"
    assert project.remote_key == "github.com/acme/webapp"
    listing = api_client(token_for(admin)).get("/api/v1/projects/")
    assert "ghp_secret123" not in listing.content.decode()
    assert strip_credentials("git@github.com:acme/webapp.git") == "git@github.com:acme/webapp.git"


# --- one repository, two folders ---------------------------------------------------------------
def test_two_machines_with_one_origin_under_two_paths_count_as_one_project(owner, member):
    """The issue's example: clones at src/webapp and code/acme-webapp of one origin."""
    first, second = "-home-dev-src-webapp", "-home-dev-code-acme-webapp"
    send(
        api_client(token_for(owner)),
        daily_report((first, 1000, 1.5)),
        {first: {"cwd": "/home/dev/src/webapp", "git_remote": "git@github.com:acme/webapp.git"}},
        machine_uuid=uuid.uuid4(),
        name="laptop",
    )
    send(
        api_client(token_for(member)),
        daily_report((second, 500, 0.25), ("-home-dev-src-other", 7, 0.01)),
        {
            second: {
                "cwd": "/home/dev/code/acme-webapp",
                "git_remote": "https://github.com/acme/webapp",
            }
        },
        machine_uuid=uuid.uuid4(),
        name="desktop",
    )

    webapp = Project.objects.get(key=first)
    assert Project.objects.get(key=second).alias_of == webapp
    response = api_client(token_for(owner)).get(USAGE_URL, {"group_by": "project", "scope": "team"})
    assert response.status_code == 200, response.json()
    rows = {row["key"]: row for row in response.json()["results"]}
    assert len(rows) == 2
    grouped = rows[str(webapp.public_id)]
    assert grouped["total_tokens"] == 1500
    assert Decimal(grouped["cost_usd"]) == Decimal("1.75")
    totals = response.json()["totals"]
    assert totals["total_tokens"] == sum(row["total_tokens"] for row in rows.values()) == 1507


def test_an_ungrouped_project_is_not_grouped_again_by_its_remote(owner, team_a):
    remote = "github.com/acme/webapp"
    first = Project.objects.create(
        team=team_a, key="-a-webapp", display_name="webapp", remote_key=remote
    )
    second = Project.objects.create(
        team=team_a, key="-b-webapp", display_name="webapp", remote_key=remote
    )
    assert group_same_remotes(team_a, {remote}) == 1
    second.refresh_from_db()
    assert second.alias_of == first

    regroup(second, None)
    assert group_same_remotes(team_a, {remote}) == 0
    send(
        api_client(token_for(owner)),
        daily_report(("-b-webapp", 10, 0.01)),
        {"-b-webapp": {"cwd": "/b/webapp", "git_remote": "git@github.com:acme/webapp.git"}},
    )
    second.refresh_from_db()
    assert second.alias_of is None and second.keep_apart

    regroup(second, first)
    second.refresh_from_db()
    assert second.alias_of == first and not second.keep_apart


def test_projects_of_one_remote_in_two_teams_are_not_grouped(owner, outsider):
    remote = {"cwd": "/home/dev/src/webapp", "git_remote": "git@github.com:acme/webapp.git"}
    key = "-home-dev-src-webapp"
    send(api_client(token_for(owner)), daily_report((key, 10, 0.01)), {key: remote})
    send(api_client(token_for(outsider)), daily_report((key, 10, 0.01)), {key: remote})

    assert Project.objects.filter(key=key).count() == 2
    assert not Project.objects.exclude(alias_of=None).exists()
    assert DailyUsage.objects.count() == 2


def test_the_migration_removes_credentials_already_stored_and_fills_the_normalised_remote(
    team_a,
):
    migration = importlib.import_module("usage.migrations.0005_project_remote_key_and_keep_apart")
    project = Project.objects.create(
        team=team_a,
        key="-home-dev-src-webapp",
        display_name="webapp",
        git_remote="https://dev:ghp_secret@GitHub.com/acme/webapp.git",
    )

    migration.clean_remotes(apps, None)

    project.refresh_from_db()
    assert project.git_remote == "https://GitHub.com/acme/webapp.git"
    assert project.remote_key == "github.com/acme/webapp"


# --- whose report counts -----------------------------------------------------------------------
def test_a_teammates_report_never_overwrites_the_folder_remote_or_name_another_agent_reported(
    owner, member
):
    key = "-home-dev-src-webapp"
    send(
        api_client(token_for(owner)),
        daily_report((key, 10, 0.01)),
        {key: {"cwd": "/home/dev/src/webapp", "git_remote": "git@github.com:acme/webapp.git"}},
        machine_uuid=uuid.uuid4(),
    )
    send(
        api_client(token_for(member)),
        daily_report((key, 20, 0.02)),
        {key: {"cwd": "/home/dev/src/web-app", "git_remote": "git@github.com:other/secret.git"}},
        machine_uuid=uuid.uuid4(),
    )

    project = Project.objects.get(key=key)
    assert (project.cwd, project.git_remote, project.display_name) == (
        "/home/dev/src/webapp",
        "git@github.com:acme/webapp.git",
        "webapp",
    )
    assert project.remote_key == "github.com/acme/webapp"
    assert project.reported_by == owner


def test_a_teammates_report_fills_what_is_still_blank(owner, member):
    key = "-home-dev-src-webapp"
    send(
        api_client(token_for(owner)),
        daily_report((key, 10, 0.01)),
        {key: {"cwd": "/home/dev/src/webapp"}},
        machine_uuid=uuid.uuid4(),
    )
    send(
        api_client(token_for(member)),
        daily_report((key, 20, 0.02)),
        {key: {"cwd": "/home/dev/src/other", "git_remote": "https://github.com/acme/webapp"}},
        machine_uuid=uuid.uuid4(),
    )

    project = Project.objects.get(key=key)
    assert (project.cwd, project.git_remote) == (
        "/home/dev/src/webapp",
        "https://github.com/acme/webapp",
    )


def test_the_first_reporter_still_updates_their_own_project(owner):
    key = "-home-dev-src-webapp"
    client = api_client(token_for(owner))
    machine_uuid = uuid.uuid4()
    send(
        client,
        daily_report((key, 10, 0.01)),
        {key: {"cwd": "/home/dev/src/webapp"}},
        machine_uuid=machine_uuid,
    )
    send(
        client,
        daily_report((key, 10, 0.01)),
        {key: {"cwd": "/home/dev/src/webapp", "git_remote": "git@github.com:acme/webapp.git"}},
        machine_uuid=machine_uuid,
    )
    send(
        client,
        daily_report((key, 10, 0.01)),
        {key: {"cwd": "/home/dev/src/webapp", "git_remote": "git@github.com:acme/renamed.git"}},
        machine_uuid=machine_uuid,
    )

    assert Project.objects.get(key=key).git_remote == "git@github.com:acme/renamed.git"


def test_a_name_an_admin_chose_is_kept_whoever_reports(owner, member, team_a):
    key = "-home-dev-src-my-app"
    Project.objects.create(team=team_a, key=key, display_name="Customer portal")
    for user in (owner, member):
        send(
            api_client(token_for(user)),
            daily_report((key, 10, 0.01)),
            {key: {"cwd": f"/home/{user.pk}/src/my-app"}},
            machine_uuid=uuid.uuid4(),
        )

    assert Project.objects.get(key=key).display_name == "Customer portal"
