"""``make run`` prints where it serves: the HOST and PORT it was given, not a fixed :8000."""

import io
import os
import stat
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_make_run_hands_its_host_and_port_to_seed_demo_and_to_the_pages(tmp_path):
    """The real Makefile, with a stand-in Python that prints what it was called with and the
    PUBLIC_BASE_URL it sees (the webhook URLs the pages show are built on it)."""
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # newer than requirements.txt: nothing to install
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "PUBLIC_BASE_URL=$PUBLIC_BASE_URL ARGS=$*"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {key: value for key, value in os.environ.items() if key not in ("PUBLIC_BASE_URL", "MAKEFLAGS")}
    done = subprocess.run(
        ["make", "-s", "-C", str(PROJECT_ROOT), "run", f"VENV={venv}", f"PY={fake}", "HOST=127.0.0.5", "PORT=8123"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "PUBLIC_BASE_URL=http://127.0.0.5:8123 ARGS=manage.py migrate --noinput",
        "PUBLIC_BASE_URL=http://127.0.0.5:8123 ARGS=manage.py seed_demo --base-url http://127.0.0.5:8123",
        "PUBLIC_BASE_URL=http://127.0.0.5:8123 ARGS=manage.py runserver 127.0.0.5:8123",
    ]


@pytest.mark.django_db
def test_seed_demo_prints_the_address_it_is_given(settings):
    settings.DEBUG = True
    out = io.StringIO()
    call_command("seed_demo", "--base-url", "http://127.0.0.5:8123/", stdout=out)
    last = out.getvalue().splitlines()[-1]
    assert last == "  tenant pages: http://127.0.0.5:8123/accounts/login/ · admin: http://127.0.0.5:8123/admin/"
    assert ":8000" not in out.getvalue()


@pytest.mark.django_db
def test_seed_demo_without_an_address_prints_public_base_url(settings):
    settings.DEBUG, settings.PUBLIC_BASE_URL = True, "https://demo.example.test"
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert out.getvalue().splitlines()[-1].endswith("https://demo.example.test/admin/")


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["127.0.0.1:8000", "ftp://x", "http://", "http://a b", "x" * 5000])
def test_seed_demo_refuses_an_address_that_is_no_url_in_one_line(settings, bad):
    settings.DEBUG = True
    with pytest.raises(CommandError) as refused:
        call_command("seed_demo", "--base-url", bad, stdout=io.StringIO())
    message = str(refused.value)
    assert message.startswith("--base-url must be an http(s) URL") and "\n" not in message and len(message) < 300
