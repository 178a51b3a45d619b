"""Project names and identity: readable names from ccusage keys, normalised git remotes, and
grouping one repository seen under different folders into one project."""

import logging
import re
from urllib.parse import urlsplit, urlunsplit

from django.db import transaction

from usage.models import Project, readable_project_name
from usage.naming import name_clash, readable_name

log = logging.getLogger(__name__)

__all__ = [
    "group_same_remotes",
    "normalise_git_remote",
    "readable_project_name",
    "regroup",
    "strip_credentials",
]

# scp-like syntax git accepts: `[user@]host:path` (no scheme, the colon before any slash).
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>[^:/]+):(?P<path>(?!//).*)$")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def strip_credentials(url: str) -> str:
    """`https://user:token@host/x.git` → `https://host/x.git`; other remotes as they are.

    A token pasted into a clone URL must never be stored or shown (git keeps it in
    `.git/config`, so `git remote get-url` prints it). scp-like `git@host:x` names a login,
    not a secret, and is kept.
    """
    url = url.strip()
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def normalise_git_remote(url: str) -> str:
    """The repository a remote points at, as `host/path`, so every way of writing it matches.

    `git@GitHub.com:acme/webapp.git`, `https://github.com/acme/webapp/`,
    `ssh://git@github.com:22/acme/webapp.git` and `https://user:token@github.com/acme/webapp`
    all give `github.com/acme/webapp`: scheme, user, password and port are dropped, the host is
    lower-cased (DNS names are case-insensitive), a trailing `/` and `.git` are removed. The
    path keeps its case (some hosts treat it as case-sensitive). A local path stays a path.
    Empty for an empty or unreadable remote.
    """
    url = url.strip()
    if not url:
        return ""
    if "://" in url:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        path = parts.path
        if parts.scheme == "file" or not host:
            return _trim_repo_path(path) if path else ""
    elif _WINDOWS_DRIVE.match(url) or url.startswith(("/", ".", "~")):
        return _trim_repo_path(url)
    else:
        match = _SCP_LIKE.match(url)
        if match is None:
            return _trim_repo_path(url)
        host = match["host"].lower()
        path = match["path"]
    path = _trim_repo_path(path).lstrip("/")
    if not path:
        return ""
    return f"{host}/{path}"


def _trim_repo_path(path: str) -> str:
    path = path.rstrip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")].rstrip("/")
    return path


def group_same_remotes(team, remote_keys) -> int:
    """Group the team's projects that share one of `remote_keys` under one project.

    The oldest project of a remote becomes (or stays) the group's project; every other project
    of that remote that is not grouped yet joins it. Projects an admin took out of a group
    (`keep_apart`) and projects an admin grouped elsewhere are left alone, so an undone
    grouping is never redone. Returns how many projects were grouped.
    """
    grouped = 0
    for remote_key in sorted(k for k in remote_keys if k):
        members = list(
            Project.objects.select_related("alias_of")
            .filter(team=team, remote_key=remote_key, keep_apart=False)
            .order_by("created_at", "pk")
        )
        if len(members) < 2:
            continue
        target = members[0].canonical
        for project in members[1:]:
            if project.alias_of_id is None and project.pk != target.pk:
                project.set_alias(target)
                grouped += 1
    return grouped


@transaction.atomic
def regroup(project: Project, target: Project | None, by=None) -> None:
    """An admin (`by`, a user, for the log) groups `project` under `target`, or takes it out
    of its group (None).

    Taking a project out marks it `keep_apart`, so the automatic grouping by git remote never
    puts it back; grouping it by hand clears that mark. Errors: ValueError from
    Project.set_alias (another team's project, or the project itself).
    """
    project.set_alias(target)
    keep_apart = target is None
    if project.keep_apart != keep_apart:
        project.keep_apart = keep_apart
        project.save(update_fields=["keep_apart"])
    log.info(
        "project alias changed",
        extra={
            "project": str(project.public_id),
            "alias_of": str(target.public_id) if target else None,
            "by": by.pk if by is not None else None,
        },
    )


def rename(project: Project, name: str, by=None) -> str:
    """An admin (`by`, for the log) names `project` for every page; returns the old name.

    Raises ValueError with a sentence for the form or the API when `name` is blank, longer than
    the column, or already the name of another ungrouped project of the team (any case), which
    would make two rows of the explorer and the chargeback indistinguishable.
    """
    limit = Project._meta.get_field("display_name").max_length or 200
    name = readable_name(name, limit, "project")
    ungrouped = Project.objects.filter(team_id=project.team_id, alias_of__isnull=True)
    clash = name_clash(ungrouped, "display_name", name, project)
    if clash is not None:
        raise ValueError(
            f"“{clash.display_name}” is already the name of another project; choose a name that "
            "tells them apart, or group the two projects."
        )
    old = project.display_name
    project.display_name = name
    project.save(update_fields=["display_name"])
    log.info(
        "project renamed",
        extra={"project": str(project.public_id), "by": getattr(by, "pk", None)},
    )
    return old
