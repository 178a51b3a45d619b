"""The projects page: every member sees the team's projects; only admins group, ungroup and
rename them; another team's projects are 404."""

import pytest
from django.urls import reverse

from tests.conftest import login
from tests.factories import ProjectFactory
from usage.models import Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def clones(team_a):
    """One repository cloned in two folders, grouped automatically, and another project."""
    webapp = ProjectFactory(
        team=team_a,
        key="-home-dev-src-webapp",
        display_name="webapp",
        cwd="/home/dev/src/webapp",
        git_remote="git@github.com:acme/webapp.git",
        remote_key="github.com/acme/webapp",
    )
    clone = ProjectFactory(
        team=team_a,
        key="-home-dev-code-acme-webapp",
        display_name="acme-webapp",
        git_remote="https://github.com/acme/webapp",
        remote_key="github.com/acme/webapp",
        alias_of=webapp,
    )
    infra = ProjectFactory(team=team_a, key="-home-dev-src-infra", display_name="infra")
    return webapp, clone, infra


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(reverse("projects"))
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_every_member_of_the_team_sees_its_projects_and_groups(clones, cast, role, team_b):
    ProjectFactory(team=team_b, key="-home-other-secret", display_name="secret-project")
    response = login(cast[role]).get(reverse("projects"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "webapp" in page and "-home-dev-code-acme-webapp" in page and "infra" in page
    assert "secret-project" not in page


def test_only_admins_see_the_grouping_controls(clones, cast):
    _, clone, _ = clones
    ungroup = reverse("project_group", args=[clone.public_id])
    assert ungroup in login(cast["admin"]).get(reverse("projects")).content.decode()
    assert ungroup in login(cast["owner"]).get(reverse("projects")).content.decode()
    assert ungroup not in login(cast["member"]).get(reverse("projects")).content.decode()


def test_the_navigation_links_to_the_projects_page_for_team_members(cast):
    link = f'href="{reverse("projects")}"'
    assert link in login(cast["admin"]).get(reverse("machines")).content.decode()
    assert link in login(cast["member"]).get(reverse("machines")).content.decode()


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_an_admin_ungroups_a_clone_and_it_stays_apart(clones, cast, role):
    _, clone, _ = clones
    response = login(cast[role]).post(
        reverse("project_group", args=[clone.public_id]), {"action": "ungroup"}
    )
    assert response.status_code == 302
    clone.refresh_from_db()
    assert clone.alias_of is None and clone.keep_apart


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_an_admin_groups_a_project_under_another(clones, cast, role):
    webapp, _, infra = clones
    response = login(cast[role]).post(
        reverse("project_group", args=[infra.public_id]), {"target": str(webapp.public_id)}
    )
    assert response.status_code == 302
    infra.refresh_from_db()
    assert infra.alias_of == webapp and not infra.keep_apart


def test_grouping_under_a_project_of_another_team_or_itself_changes_nothing(clones, cast, team_b):
    _, _, infra = clones
    theirs = ProjectFactory(team=team_b, key="-home-dev-src-webapp")
    client = login(cast["admin"])
    for target in (theirs.public_id, infra.public_id, "not-a-uuid"):
        response = client.post(
            reverse("project_group", args=[infra.public_id]), {"target": str(target)}, follow=True
        )
        assert response.status_code == 200
        assert response.context["messages"]
    infra.refresh_from_db()
    assert infra.alias_of is None


def test_a_member_may_not_group_ungroup_or_rename(clones, cast):
    webapp, clone, infra = clones
    client = login(cast["member"])
    assert (
        client.post(reverse("project_group", args=[clone.public_id]), {"action": "ungroup"})
    ).status_code == 403
    assert (
        client.post(
            reverse("project_group", args=[infra.public_id]), {"target": str(webapp.public_id)}
        )
    ).status_code == 403
    assert (
        client.post(reverse("project_rename", args=[infra.public_id]), {"name": "x"})
    ).status_code == 403
    clone.refresh_from_db()
    infra.refresh_from_db()
    assert clone.alias_of == webapp and infra.alias_of is None and infra.display_name == "infra"


def test_an_outsider_gets_404_for_the_teams_projects(clones, cast):
    webapp, clone, infra = clones
    client = login(cast["outsider"])
    assert "webapp" not in client.get(reverse("projects")).content.decode()
    for url, data in [
        (reverse("project_group", args=[clone.public_id]), {"action": "ungroup"}),
        (reverse("project_rename", args=[infra.public_id]), {"name": "x"}),
    ]:
        assert client.post(url, data).status_code == 404
    clone.refresh_from_db()
    assert clone.alias_of == webapp


def test_an_admin_renames_a_project_and_an_empty_name_is_refused(clones, cast):
    _, _, infra = clones
    client = login(cast["admin"])
    client.post(reverse("project_rename", args=[infra.public_id]), {"name": "  Platform  "})
    assert Project.objects.get(pk=infra.pk).display_name == "Platform"
    response = client.post(
        reverse("project_rename", args=[infra.public_id]), {"name": " "}, follow=True
    )
    assert "1 to 200 characters" in response.content.decode()
    assert Project.objects.get(pk=infra.pk).display_name == "Platform"


def test_the_page_only_takes_post_for_actions(clones, cast):
    _, clone, _ = clones
    response = login(cast["admin"]).get(reverse("project_group", args=[clone.public_id]))
    assert response.status_code == 405


def test_usage_with_no_project_is_never_grouped_with_a_project(clones, cast, team_a):
    webapp, _, infra = clones
    unattributed = ProjectFactory(team=team_a, key="", display_name="(no project)")
    client = login(cast["admin"])
    for project, target in ((unattributed, webapp), (infra, unattributed)):
        response = client.post(
            reverse("project_group", args=[project.public_id]),
            {"target": str(target.public_id)},
            follow=True,
        )
        assert "Usage with no project stays on its own" in response.content.decode()
    assert not Project.objects.filter(alias_of=unattributed).exists()
    assert Project.objects.get(pk=unattributed.pk).alias_of is None


def test_a_project_cannot_take_the_name_of_another_in_any_case(clones, cast):
    _, clone, infra = clones
    client = login(cast["admin"])
    response = client.post(
        reverse("project_rename", args=[infra.public_id]), {"name": "WEBAPP"}, follow=True
    )
    assert "already the name of another project" in response.content.decode()
    assert Project.objects.get(pk=infra.pk).display_name == "infra"
    # A grouped clone's own name does not count: it is shown under its group's name.
    client.post(reverse("project_rename", args=[infra.public_id]), {"name": clone.display_name})
    assert Project.objects.get(pk=infra.pk).display_name == clone.display_name


def test_the_api_refuses_a_duplicate_name_or_no_project_grouping_and_changes_nothing(
    clones, cast, team_a
):
    _, _, infra = clones
    unattributed = ProjectFactory(team=team_a, key="", display_name="(no project)")
    client = login(cast["admin"])
    url = f"/api/v1/projects/{infra.public_id}/"
    taken = client.patch(url, {"name": "webapp"}, content_type="application/json")
    assert taken.status_code == 400
    assert "already the name" in taken.json()["errors"]["name"][0]
    both = client.patch(
        url,
        {"name": "Platform", "alias_of": str(unattributed.public_id)},
        content_type="application/json",
    )
    assert both.status_code == 400 and "alias_of" in both.json()["errors"]
    infra.refresh_from_db()
    assert (infra.display_name, infra.alias_of) == ("infra", None)  # neither change stayed


def test_a_project_name_with_a_bidi_override_is_refused(clones, cast):
    _, _, infra = clones
    response = login(cast["admin"]).post(
        reverse("project_rename", args=[infra.public_id]), {"name": "infra\u202etxt"}, follow=True
    )
    assert "right-to-left override" in response.content.decode()
    assert Project.objects.get(pk=infra.pk).display_name == "infra"
