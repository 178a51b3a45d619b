"""Production settings: `check --deploy` is clean but for HSTS preload, and bad environment
values stop start-up with a message naming the variable."""

import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The shared autouse cache fixture touches the database; these tests themselves do not.
pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(40)[:50],
    "ALLOWED_HOSTS": "example.com",
    "SITE_URL": "https://example.com",
}


def manage(tmp_path, *args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_but_hsts_preload(tmp_path):
    result = manage(tmp_path, "check", "--deploy", **PRODUCTION)
    output = result.stdout + result.stderr
    issues = sorted(set(re.findall(r"\((\w+\.[WE]\d+)\)", output)))
    assert issues == ["security.W021"], output


def test_production_sets_secure_cookies_hsts_and_https(tmp_path):
    script = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT,"
        " s.SECURE_HSTS_SECONDS >= 31536000, s.CSRF_TRUSTED_ORIGINS)"
    )
    result = manage(tmp_path, "shell", "-c", script, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True True True True ['https://example.com']"


@pytest.mark.parametrize(
    "secret",
    [None, "dev-only-insecure-key-change-me", "too-short"],
    ids=["missing", "development default", "too short"],
)
def test_production_refuses_a_missing_or_weak_secret_key(tmp_path, secret):
    env = dict(PRODUCTION)
    env.pop("SECRET_KEY")
    if secret is not None:
        env["SECRET_KEY"] = secret
    result = manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize(
    "variable, value",
    [
        ("DEBUG", "maybe"),
        ("EMAIL_PORT", "twenty-five"),
        ("EMAIL_USE_TLS", "sometimes"),
        ("DATABASE_URL", "mysql://db/x"),
        ("REDIS_URL", "http://localhost:6379"),
        ("SITE_URL", "example.com"),
        ("TRUSTED_PROXY_COUNT", "-1"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_environment_value_stops_start_up_naming_the_variable(tmp_path, variable, value):
    result = manage(tmp_path, "check", **{variable: value})
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line
    assert variable in last_line


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_the_systemd_units_in_docs_pass_systemd_analyze(tmp_path):
    # The units name the install folder of docs/production.md; point them at this checkout.
    units = []
    for unit in sorted((ROOT / "docs" / "deploy").glob("*.service")):
        target = tmp_path / unit.name
        target.write_text(unit.read_text().replace("/srv/claude-telemetry", str(ROOT)))
        units.append(str(target))
    assert len(units) == 3
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_the_production_procfile_runs_gunicorn_one_worker_and_one_beat():
    lines = (ROOT / "Procfile.production").read_text().splitlines()
    processes = dict(line.split(":", 1) for line in lines if line.strip())
    assert set(processes) == {"web", "worker", "beat"}
    assert "exec gunicorn telemetry_site.wsgi" in processes["web"]
    assert "worker" in processes["worker"].split()
    assert "beat" in processes["beat"].split()


def test_the_production_web_line_clears_the_prometheus_multiprocess_folder(tmp_path):
    """The web line runs under sh (honcho, foreman): it must hand gunicorn an emptied folder."""
    web = next(
        line.split(":", 1)[1]
        for line in (ROOT / "Procfile.production").read_text().splitlines()
        if line.startswith("web:")
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gunicorn = bin_dir / "gunicorn"
    gunicorn.write_text('#!/bin/sh\necho "$PROMETHEUS_MULTIPROC_DIR"\n')
    gunicorn.chmod(0o755)
    stale = tmp_path / "var" / "prometheus-web" / "counter_1.db"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = subprocess.run(
        ["sh", "-c", web], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "var/prometheus-web"
    assert not stale.exists()
