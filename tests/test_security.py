"""Login lockout and production settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_repeated_failed_logins_lock_the_account_even_with_the_right_password(client, scientist):  # type: ignore[no-untyped-def]
    scientist.set_password("right-password")
    scientist.save()
    statuses = [
        client.post(reverse("login"), {"username": scientist.username, "password": "wrong"}).status_code
        for _ in range(5)
    ]
    # Four plain refusals, then the fifth failure locks the account.
    assert statuses == [200, 200, 200, 200, 429]
    response = client.post(reverse("login"), {"username": scientist.username, "password": "right-password"})
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session
    # The page sends the user to whoever can unlock (leads cannot: no access to django-axes
    # in admin), and the command it names does.
    assert b"python manage.py axes_reset_username USERNAME" in response.content and b"ask a lead" not in response.content
    call_command("axes_reset_username", scientist.username)
    assert client.post(reverse("login"), {"username": scientist.username, "password": "right-password"}).status_code == 302


@pytest.mark.django_db
def test_the_lockout_is_per_username_and_address_and_lasts_fifteen_minutes(client, scientist, settings):  # type: ignore[no-untyped-def]
    from django.test import Client

    scientist.set_password("right-password")
    scientist.save()
    for _ in range(5):
        client.post(reverse("login"), {"username": scientist.username, "password": "wrong"})
    right = {"username": scientist.username, "password": "right-password"}
    assert client.post(reverse("login"), right).status_code == 429
    # The same account from another address is not locked out (nor is another account).
    assert Client(REMOTE_ADDR="10.0.0.2").post(reverse("login"), right).status_code == 302
    assert settings.AXES_COOLOFF_TIME == 0.25  # hours


@pytest.mark.django_db
def test_a_successful_login_before_the_limit_resets_the_count(client, scientist):  # type: ignore[no-untyped-def]
    scientist.set_password("right-password")
    scientist.save()
    for _ in range(4):
        client.post(reverse("login"), {"username": scientist.username, "password": "wrong"})
    assert client.post(reverse("login"), {"username": scientist.username, "password": "right-password"}).status_code == 302


def _deploy_check(env_extra: dict[str, str]) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"))}
    env.update(env_extra)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_production_settings_pass_the_deploy_check_with_a_real_environment():  # type: ignore[no-untyped-def]
    result = _deploy_check(
        {
            "SECRET_KEY": "x" * 20 + "-a-long-random-production-secret-key-" + "y" * 20,
            "ALLOWED_HOSTS": "chemloop.example.org",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/chemloop",
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():  # type: ignore[no-untyped-def]
    result = _deploy_check({"ALLOWED_HOSTS": "x.org", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/chemloop"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts_or_a_database():  # type: ignore[no-untyped-def]
    # README: production "refuses to start without SECRET_KEY, DATABASE_URL and ALLOWED_HOSTS".
    secret = "x" * 20 + "-a-long-random-production-secret-key-" + "y" * 20
    result = _deploy_check({"SECRET_KEY": secret, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/chemloop"})
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.production", SECRET_KEY=secret, ALLOWED_HOSTS="x.org")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_production_defaults_are_safe():  # type: ignore[no-untyped-def]
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG",)}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production", SECRET_KEY="k" * 60, ALLOWED_HOSTS="x.org",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/chemloop",
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "True", "True", "True"], out.stderr


@pytest.mark.django_db
def test_leads_can_neither_read_nor_mint_api_tokens_in_admin(client_for, lead, scientist):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    Token.objects.create(user=scientist)
    # The migrated lead group itself holds no token permission (the fixture's group is it).
    assert not Group.objects.get(name="lead").permissions.filter(content_type__app_label="authtoken").exists()
    c = client_for(lead)
    assert c.get("/admin/authtoken/tokenproxy/").status_code == 403
    assert c.post("/admin/authtoken/tokenproxy/add/", {"user": scientist.pk}).status_code == 403
    assert Token.objects.count() == 1
    assert b"tokenproxy" not in c.get("/admin/").content
