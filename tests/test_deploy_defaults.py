"""Production defaults that must not depend on remembering a variable (issue 7.18): a missing broker
stops start-up instead of running tasks inside requests, and behind an https proxy http is
redirected and HSTS is sent. Each case starts the settings in a fresh interpreter, as a deployment
would, with DEBUG off."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
    "'eager': s.CELERY_TASK_ALWAYS_EAGER, 'redirect': s.SECURE_SSL_REDIRECT, 'hsts': s.SECURE_HSTS_SECONDS, "
    "'proxy': s.SECURE_PROXY_SSL_HEADER}))"
)


def production_env(**extra) -> dict:
    drop = ("CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "BEHIND_HTTPS_PROXY", "SECURE_SSL_REDIRECT",
            "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER", "DB_SERVER_SIDE_BINDING")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        DJANGO_SETTINGS_MODULE="engarde.settings", DEBUG="false", SECRET_KEY=settings.SECRET_KEY,
        FIELD_ENCRYPTION_KEYS=",".join(settings.FIELD_ENCRYPTION_KEYS), ALLOWED_HOSTS="hub.example.com",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/5",
    )
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def run(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)


def started(env) -> dict:
    result = run(["-c", PRINT_SETTINGS], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_missing_broker_with_debug_off_is_a_start_up_error_in_one_line():
    result = run(["manage.py", "check"], production_env(CELERY_BROKER_URL=None))
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("configuration error: CELERY_BROKER_URL must be set")
    assert "CELERY_TASK_ALWAYS_EAGER=true" in lines[0]


def test_running_tasks_in_process_with_debug_off_is_a_choice():
    assert started(production_env(CELERY_BROKER_URL=None, CELERY_TASK_ALWAYS_EAGER="true"))["eager"] is True
    assert started(production_env())["eager"] is False
    assert started(production_env(DEBUG="true", CELERY_BROKER_URL=None))["eager"] is True


def test_behind_an_https_proxy_http_is_redirected_and_hsts_is_on_by_default():
    values = started(production_env(BEHIND_HTTPS_PROXY="true"))
    assert values == {"eager": False, "redirect": True, "hsts": 31536000, "proxy": ["HTTP_X_FORWARDED_PROTO", "https"]}
    deploy = run(["manage.py", "check", "--deploy"], production_env(BEHIND_HTTPS_PROXY="true"))
    assert "security.W004" not in deploy.stderr and "security.W008" not in deploy.stderr, deploy.stderr


def test_the_https_defaults_can_be_overridden():
    values = started(production_env(
        BEHIND_HTTPS_PROXY="true", SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_SCHEME,https",
    ))
    assert values["redirect"] is False and values["hsts"] == 0
    assert values["proxy"] == ["HTTP_X_FORWARDED_SCHEME", "https"]
    # Not behind a proxy, and in development: nothing is forced.
    assert started(production_env())["redirect"] is False
    assert started(production_env(DEBUG="true", BEHIND_HTTPS_PROXY="true"))["hsts"] == 0


def test_postgresql_binds_parameters_server_side_unless_turned_off():
    """``DB_SERVER_SIDE_BINDING`` (README, Configuration): on by default for PostgreSQL, Django's own
    option; ``false`` goes back to client-side binding; SQLite has no such option."""
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            "print(json.dumps(s.DATABASES['default'].get('OPTIONS', {}).get('server_side_binding')))")
    postgres = production_env(DATABASE_URL="postgres://app:pw@127.0.0.1:5432/engarde", MIGRATE_DATABASE_URL=None,
                              OPERATOR_DATABASE_URL=None)

    def binding(env):
        result = run(["-c", code], env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    assert binding(postgres) is True
    assert binding({**postgres, "DB_SERVER_SIDE_BINDING": "false"}) is None
    assert binding(production_env(DATABASE_URL="sqlite:////tmp/engarde-binding-check.sqlite3", MIGRATE_DATABASE_URL=None,
                                  OPERATOR_DATABASE_URL=None)) is None
