"""The projects page: the team's projects, how they are grouped, and (admins) grouping,
ungrouping and renaming them.

Every member of the team sees the list read-only: project names and groups are team-level, as
in GET /api/v1/projects/. Only team admins act (403 for other members); a project of another
team is 404.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.access import is_team_admin, team_of
from dashboards.forms import ProjectNameForm, submitted_ids
from usage import queries
from usage.models import Project
from usage.projects import regroup, rename

# Projects (with their folders) a page: a big team has hundreds, each with its forms.
PROJECTS_PER_PAGE = 50


@login_required
def projects(request):
    """The team's projects by name, PROJECTS_PER_PAGE a page (`?page=`), each with the
    folders grouped under it; admins get the rename and group forms, whose target list (every
    project) is on the page once."""
    if team_of(request.user) is None:
        raise Http404("You are not in a team.")
    all_projects = list(queries.projects_for(request.user))
    members: dict[int, list[Project]] = {}
    for project in all_projects:
        if project.alias_of_id is not None:
            members.setdefault(project.alias_of_id, []).append(project)
    groups = [
        {"project": project, "aliases": members.get(project.pk, [])}
        for project in all_projects
        if project.alias_of_id is None
    ]
    # A page number past the end shows the last page, not an error.
    page = Paginator(groups, PROJECTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "dashboards/projects.html",
        {
            "groups": page.object_list,
            "page": page,
            "targets": [g["project"] for g in groups],
            "may_manage": is_team_admin(request.user),
        },
    )


def _managed_project(request, public_id) -> Project:
    """The project if it is in the viewer's team (else 404) and the viewer is a team admin
    (else 403: a member sees the project but may not change it)."""
    project = get_object_or_404(queries.projects_for(request.user), public_id=public_id)
    if not is_team_admin(request.user):
        raise PermissionDenied("Only team admins manage projects.")
    return project


@require_POST
@login_required
def project_group(request, public_id):
    project = _managed_project(request, public_id)
    target = None
    if request.POST.get("action") != "ungroup":
        target = (
            queries.projects_for(request.user)
            .filter(public_id__in=submitted_ids(request.POST.get("target")))
            .first()
        )
        if target is None:
            messages.error(request, "Choose a project of your team to group it under.")
            return redirect("projects")
    try:
        regroup(project, target, by=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("projects")
    if target is None:
        messages.success(
            request, f"“{project.display_name}” ({project.key}) counts on its own again."
        )
    else:
        messages.success(
            request, f"“{project.display_name}” now counts as “{target.canonical.display_name}”."
        )
    return redirect("projects")


@require_POST
@login_required
def project_rename(request, public_id):
    project = _managed_project(request, public_id)
    form = ProjectNameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A project name must be 1 to 200 characters.")
        return redirect("projects")
    try:
        old_name = rename(project, form.cleaned_data["name"], by=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("projects")
    messages.success(request, f"Renamed “{old_name}” to “{project.display_name}”.")
    return redirect("projects")
