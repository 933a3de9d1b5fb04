"""Production mode (DJANGO_SECURE=1): refuses development secrets, turns on HSTS / secure cookies / SSL redirect
and TOTP, and `manage.py check --deploy` is clean; /metrics wants the scraper's token."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from conf.settings import DEFAULT_SECRET_KEY, load, production_problems
from testkit.processes import ROOT, worker_env

GOOD = {
    "DJANGO_SECURE": "1",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
    "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
    "METRICS_TOKEN": secrets.token_urlsafe(16),
    "DJANGO_ALLOWED_HOSTS": "bot.example.com",
    "DJANGO_DEBUG": "0",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, text=True, capture_output=True,
                          env=worker_env(None, **env), timeout=120)


@pytest.mark.slow
def test_check_deploy_is_clean_in_production_mode():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **GOOD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    shown = manage("shell", "-c", "from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS, "
                   "s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.ADMIN_REQUIRE_OTP)", **GOOD)
    assert shown.stdout.strip().splitlines()[-1].split() == ["31536000", "True", "True", "True", "True"], shown.stderr


@pytest.mark.slow
def test_development_mode_shows_what_production_mode_fixes():
    result = manage("check", "--deploy", DJANGO_SECURE="0")
    for warning in ("W004", "W008", "W009", "W012", "W016"):
        assert warning in result.stderr + result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("change", "named"), [
    ({"DJANGO_SECRET_KEY": DEFAULT_SECRET_KEY}, "DJANGO_SECRET_KEY"),
    ({"FIELD_ENCRYPTION_KEY": ""}, "FIELD_ENCRYPTION_KEY"),
    ({"AUDIT_HMAC_KEY": ""}, "AUDIT_HMAC_KEY"),
])
def test_production_mode_refuses_to_start_with_development_secrets(change, named):
    result = manage("check", **{**GOOD, **change})
    assert result.returncode != 0
    assert "DJANGO_SECURE=1 refuses to start" in result.stderr and named in result.stderr


def test_every_production_problem_is_named():
    assert production_problems(load(GOOD)) == []
    bad = load({"DJANGO_SECURE": "1", "DJANGO_DEBUG": "1"})
    found = " ".join(production_problems(bad))
    for name in ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY", "AUDIT_HMAC_KEY", "DJANGO_DEBUG", "METRICS_TOKEN"):
        assert name in found
    weak = load({**GOOD, "DJANGO_SECRET_KEY": "a" * 60})
    assert "DJANGO_SECRET_KEY" in " ".join(production_problems(weak))


@pytest.mark.django_db
def test_metrics_need_the_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")
    assert response.status_code == 200 and "dtbot_audit_chain_ok" in response.content.decode()
