from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The Meta sync (integrations, a layer below) writes its pages through this app's store.
        from integrations.providers.meta.sync import register_store
        from reports.meta_store import MetaAdsStore

        register_store(MetaAdsStore())
