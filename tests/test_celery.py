"""The Celery app: one worker with no arguments serves every queue the project routes to."""

from engarde.celery import QUEUES, app


def test_a_plain_worker_consumes_every_routed_queue():
    consumed = set(app.amqp.queues)  # what `celery -A engarde worker` listens on without -Q
    routed = {route["queue"] for route in app.conf.task_routes.values()}
    assert routed <= consumed
    assert set(QUEUES) == consumed
    assert app.conf.task_default_queue in consumed


def test_tasks_are_acknowledged_late_and_serialised_as_json():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]


def test_without_a_broker_tasks_run_in_process():
    """The embedded default: no CELERY_BROKER_URL means eager tasks (enqueued on commit by callers).
    Read in a fresh process: the test suite itself forces eager mode on its own app."""
    import os
    import subprocess
    import sys

    code = "import django; django.setup(); from engarde.celery import app; print(app.conf.task_always_eager)"
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"} | {"DEBUG": "true"}
    without = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    env["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/15"
    with_broker = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert (without.stdout.strip(), with_broker.stdout.strip()) == ("True", "False")
