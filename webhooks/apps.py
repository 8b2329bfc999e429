from django.apps import AppConfig


def _flush_wake_up(**kwargs) -> None:
    """A Celery pool process leaves with ``os._exit``, so ``atexit`` never runs there: a drain
    wake-up its window still held (a backfill's stored rows, ``hand_off``) runs here instead."""
    from webhooks.drain import _coalescer

    _coalescer.flush_on_exit()


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import worker_process_shutdown

        worker_process_shutdown.connect(_flush_wake_up, weak=False, dispatch_uid="engarde.webhooks.flush_wake_up")
