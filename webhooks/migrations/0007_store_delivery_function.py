"""``webhooks_store_delivery``: the receiver's fast path (``webhooks.fastpath``) stores a verified
delivery with this one statement instead of six round trips (docs/architecture.md, "The fast path").

``SECURITY INVOKER``: it runs as the runtime role that calls it, with every row-level policy in
force, so it can do nothing that role could not do with plain SQL. It sets the tenant itself,
transaction-locally (``app.tenant_id``, the setting ``tenants.context`` uses, put back as it was on
the way out), checks that the tenant and the integration are still active and that the cached
``secrets_version`` is current (else ``stale``, nothing stored), then inserts the row as
``webhooks.ingest._insert_unless_known`` does (``ON CONFLICT DO NOTHING``, so the partial unique key
makes a repeat a duplicate) or counts the duplicate as ``ingest._store`` does. Returns
(``inserted``, id), (``duplicate``, NULL) or (``stale``, NULL).

The column list is the model's (``tests/test_fastpath.py`` compares it with
``WebhookLog._meta.local_concrete_fields``): a new field needs a new version of this function.

PUBLIC may not execute it; ``setup_app_role`` grants EXECUTE to the runtime and operator roles
(on existing functions, and by default privileges on later ones)."""

from django.db import migrations

from tenants.rls import PostgreSQLOnly

SIGNATURE = "webhooks_store_delivery(uuid, bigint, bigint, varchar, varchar, varchar, jsonb, bytea, inet)"

CREATE = """
CREATE FUNCTION webhooks_store_delivery(
    p_tenant_id uuid, p_integration_id bigint, p_secrets_version bigint, p_source varchar,
    p_event_id varchar, p_event_type varchar, p_headers jsonb, p_body bytea, p_remote_addr inet,
    OUT outcome text, OUT log_id bigint)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
DECLARE
    previous text := current_setting('app.tenant_id', true);
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant_id::text, true);
    PERFORM 1 FROM integrations_tenantintegration i JOIN tenants_tenant t ON t.id = i.tenant_id
     WHERE i.id = p_integration_id AND i.tenant_id = p_tenant_id AND i.provider = p_source
       AND i.is_active AND t.is_active AND i.secrets_version = p_secrets_version;
    IF NOT FOUND THEN
        outcome := 'stale';
    ELSE
        INSERT INTO webhooks_webhooklog (
            tenant_id, source, event_id, event_type, status, headers, body, remote_addr, origin,
            delivery_count, attempts, error, traceback, unstored_rejections,
            received_at, last_delivery_at, processed_at, pruned_at, updated_at)
        VALUES (
            p_tenant_id, p_source, p_event_id, p_event_type, 'received', p_headers, p_body, p_remote_addr, 'delivery',
            1, 0, '', '', 0,
            clock_timestamp(), clock_timestamp(), NULL, NULL, clock_timestamp())
        ON CONFLICT DO NOTHING
        RETURNING id INTO log_id;
        IF log_id IS NOT NULL THEN
            outcome := 'inserted';
        ELSE
            -- A repeat delivery: counted on the first row (never on a rejected one), as ingest does.
            UPDATE webhooks_webhooklog SET delivery_count = delivery_count + 1, last_delivery_at = clock_timestamp()
             WHERE tenant_id = p_tenant_id AND source = p_source AND event_id = p_event_id
               AND NOT (status = 'rejected');
            -- Neither inserted nor found: not ours to explain here; the view decides.
            outcome := CASE WHEN FOUND THEN 'duplicate' ELSE 'stale' END;
        END IF;
    END IF;
    PERFORM set_config('app.tenant_id', coalesce(previous, ''), true);
END
$$;
REVOKE ALL ON FUNCTION {signature} FROM PUBLIC;
""".replace("{signature}", SIGNATURE)

DROP = f"DROP FUNCTION IF EXISTS {SIGNATURE};"


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0005_secrets_version'),
        ('webhooks', '0006_waiting_index_with_claims'),
    ]

    operations = [
        PostgreSQLOnly(CREATE, DROP),
    ]
