"""What the agent tells the server about each project under each privacy setting."""

import json
from pathlib import Path

import pytest
from claude_telemetry.projects import folder_name, project_identity

SALT = "0123456789abcdef"


def _project_dir(projects: Path, key: str, cwd: str) -> None:
    folder = projects / key
    folder.mkdir(parents=True)
    lines = [
        {"type": "summary", "summary": "not a message"},
        {"type": "user", "cwd": cwd, "message": {"content": "secret prompt"}},
    ]
    (folder / "session.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")


@pytest.fixture
def projects_dir(tmp_path) -> Path:
    projects = tmp_path / "projects"
    # Keys as Claude Code encodes the folders: every character but [A-Za-z0-9] becomes `-`.
    _project_dir(projects, "-home-dev-src-my-app", "/home/dev/src/my-app")
    _project_dir(projects, "-home-dev-src-site-github-io", "/home/dev/src/site.github.io")
    _project_dir(projects, "-home-dev-------", "/home/dev/Проект")
    return projects


def _reports(*keys: str) -> dict:
    return {"claude_session": {"sessions": [{"projectPath": key} for key in keys]}}


KEYS = ("-home-dev-src-my-app", "-home-dev-src-site-github-io", "-home-dev-------")


def test_without_paths_the_agent_sends_each_folder_name_and_no_path(projects_dir):
    _, projects = project_identity(
        _reports(*KEYS), [projects_dir], send_paths=False, hash_names=False, salt=SALT
    )

    assert {key: info["name"] for key, info in projects.items()} == {
        "-home-dev-src-my-app": "my-app",
        "-home-dev-src-site-github-io": "site.github.io",
        "-home-dev-------": "Проект",
    }
    assert all(info["cwd"] is None and info["git_remote"] is None for info in projects.values())
    assert "/home/dev" not in json.dumps(projects, ensure_ascii=False)


def test_with_paths_the_agent_sends_the_working_folders(projects_dir):
    _, projects = project_identity(
        _reports(*KEYS), [projects_dir], send_paths=True, hash_names=False, salt=SALT
    )

    assert projects["-home-dev-------"]["cwd"] == "/home/dev/Проект"
    assert projects["-home-dev-src-my-app"]["cwd"] == "/home/dev/src/my-app"


def test_with_hashed_names_no_folder_name_leaves_the_pc(projects_dir):
    reports, projects = project_identity(
        _reports(*KEYS), [projects_dir], send_paths=False, hash_names=True, salt=SALT
    )

    sent = json.dumps([reports, projects], ensure_ascii=False)
    assert "my-app" not in sent and "Проект" not in sent and "site" not in sent
    assert all("name" not in info for info in projects.values())


def test_a_project_whose_folder_is_unknown_has_no_name(tmp_path):
    _, projects = project_identity(
        _reports("-home-dev-gone"), [tmp_path], send_paths=False, hash_names=False, salt=SALT
    )

    assert projects["-home-dev-gone"]["name"] is None


@pytest.mark.parametrize(
    ("cwd", "name"),
    [
        ("/home/dev/src/my-app", "my-app"),
        ("/home/dev/src/site.github.io/", "site.github.io"),
        ("/home/dev/Проект", "Проект"),
        ("C:\\Users\\dev\\source\\repos\\My.App", "My.App"),
        ("C:/Users/dev/my-app", "my-app"),
        ("\\\\fileserver\\share\\team-site", "team-site"),
        ("/", None),
        ("C:\\", None),
    ],
)
def test_the_folder_name_is_the_last_part_of_the_path_on_any_os(cwd, name):
    assert folder_name(cwd) == name
