"""The import rules of docs/architecture.md, read from the source with `ast`.

- An app imports only apps below it (accounts < usage < budgets < dashboards) and the shared
  plumbing of telemetry_site; the plumbing imports no app.
- Only views, admin, management commands, signal receivers, URL confs and other tasks import a
  `tasks` module; domain modules say what should happen and never queue work themselves.
- No import of a project module inside a function, unless a comment on that line (or the one
  above) names the cycle it breaks; an AppConfig's `ready()` is where Django says to connect
  receivers, so imports there are allowed.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: an app may import the apps before it in this list, never those after.
APPS = ("accounts", "usage", "budgets", "dashboards")
SITE = "telemetry_site"
# telemetry_site's shared plumbing, importable by every app; it imports no app itself.
PLUMBING = (
    "telemetry_site.api.errors",
    "telemetry_site.api.fields",
    "telemetry_site.api.pagination",
    "telemetry_site.api.parsers",
    "telemetry_site.api.permissions",
    "telemetry_site.api.schema",
    "telemetry_site.api.throttles",
    "telemetry_site.api.views",
    "telemetry_site.celery",
    "telemetry_site.devserver",
    "telemetry_site.env",
    "telemetry_site.formatting",
    "telemetry_site.jsonlog",
    "telemetry_site.queueing",
    "telemetry_site.synthetic_logs",
    "telemetry_site.templatetags",
)
PROJECT = (*APPS, SITE)


@dataclass(frozen=True)
class Import:
    module: str  # the imported module, absolute (e.g. "usage.tasks")
    line: int
    in_function: bool
    commented: bool  # a comment on the line or the line above


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str) -> list[Import]:
    """Every import of a project module in `source`, resolved to absolute names."""
    lines = source.splitlines()
    tree = ast.parse(source)
    found: list[Import] = []

    def commented(lineno: int) -> bool:
        here = lines[lineno - 1]
        above = lines[lineno - 2] if lineno >= 2 else ""
        return "#" in here or above.strip().startswith("#")

    def names(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            package = module.split(".")[: -node.level] if node.level else []
            base = ".".join([*package, base]) if base else ".".join(package)
        # `from usage import tasks` imports the module usage.tasks.
        return [f"{base}.{alias.name}" for alias in node.names] + [base]

    def visit(node, in_function: bool, in_ready: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                for name in names(child):
                    if name.split(".")[0] in PROJECT:
                        found.append(
                            Import(
                                name,
                                child.lineno,
                                in_function and not in_ready,
                                commented(child.lineno),
                            )
                        )
                continue
            is_function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            visit(
                child,
                in_function or is_function,
                in_ready or (is_function and child.name == "ready"),
            )

    visit(tree, False, False)
    return found


def is_plumbing(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in PLUMBING)


def may_import_tasks(module: str) -> bool:
    parts = module.split(".")
    return (
        parts[-1] in ("views", "admin", "receivers", "tasks", "urls")
        or "views" in parts
        or ("management" in parts and "commands" in parts)
    )


def violations(module: str, source: str) -> list[str]:
    """What `module` (with this source) does against the rules, as readable lines."""
    app = module.split(".")[0]
    found = []
    for imp in imports_of(source, module):
        target_app = imp.module.split(".")[0]
        where = f"{module}:{imp.line} imports {imp.module}"
        if app in APPS:
            if target_app == SITE and not is_plumbing(imp.module):
                found.append(f"{where}: only telemetry_site's plumbing is importable by apps")
            elif target_app in APPS and APPS.index(target_app) > APPS.index(app):
                found.append(f"{where}: {target_app} is above {app}")
        elif is_plumbing(module) and target_app in APPS:
            found.append(f"{where}: telemetry_site's plumbing imports no app")
        is_tasks = imp.module.split(".")[-1] == "tasks" and imp.module != module
        if is_tasks and not may_import_tasks(module):
            found.append(f"{where}: only views, admin, commands, receivers, urls and tasks")
        if imp.in_function and not imp.commented:
            found.append(f"{where} inside a function without a comment naming the cycle")
    return found


def server_modules() -> list[Path]:
    paths = []
    for top in PROJECT:
        paths += [
            p for p in (ROOT / top).rglob("*.py") if "migrations" not in p.relative_to(ROOT).parts
        ]
    return sorted(paths)


def test_the_server_follows_the_import_rules():
    problems = []
    for path in server_modules():
        problems += violations(module_name(path), path.read_text(encoding="utf-8"))
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "source", "reason"),
    [
        ("usage.ingest.pipeline", "from budgets import evaluate\n", "budgets is above usage"),
        ("accounts.views", "from usage.models import Machine\n", "usage is above accounts"),
        ("budgets.status", "from dashboards.cards import pace_card\n", "above budgets"),
        ("usage.queries", "from telemetry_site.urls import urlpatterns\n", "plumbing"),
        ("telemetry_site.formatting", "from usage.models import Machine\n", "imports no app"),
        ("usage.analytics.blocks", "from usage import tasks\n", "only views, admin"),
        ("budgets.evaluate", "from budgets.tasks import send_delivery\n", "only views, admin"),
        ("usage.analytics.pace", "def f():\n    from usage import queries\n", "inside a function"),
        ("usage.models", "from .tasks import derive_after_ingest\n", "only views, admin"),
    ],
)
def test_a_planted_bad_import_is_caught(module, source, reason):
    found = violations(module, source)
    assert any(reason in line for line in found), found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("dashboards.views.overview", "from budgets.status import budget_status_for\n"),
        (
            "budgets.receivers",
            "from budgets import tasks\nfrom usage.signals import usage_changed\n",
        ),
        ("usage.apps", "class C:\n    def ready(self):\n        from usage import receivers\n"),
        (
            "usage.analytics.pace",
            "def f():\n    # breaks the cycle pace -> queries -> pace\n"
            "    from usage import queries\n",
        ),
        ("telemetry_site.api.urls", "from usage.api import blocks\n"),
    ],
)
def test_allowed_imports_pass(module, source):
    assert violations(module, source) == []
