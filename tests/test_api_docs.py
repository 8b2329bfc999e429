"""The interactive API documentation: Swagger UI on our own static files, reading our schema."""

import re

from django.contrib.staticfiles import finders


def test_the_docs_page_uses_only_our_own_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), f"{asset} is not one of our static files"
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not shipped"
    assert "/api/schema/" in page
    assert not re.search(r"https?://(?!127\.0\.0\.1|localhost)", page.replace("http://www.w3.org", ""))


def test_the_schema_documents_the_webhook_endpoints_and_the_tenant_choice(client):
    schema = client.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert {"/api/webhooks/{tenant}/{source}/", "/api/webhooks/{source}/generate-url/{tenant_key}/",
            "/api/webhooks/{source}/test/{tenant_key}/"} <= set(paths)
    contacts = paths["/api/v1/contacts/"]["get"]
    names = {(p["in"], p["name"]) for p in contacts["parameters"]}
    assert {("query", "tenant"), ("header", "X-Tenant"), ("query", "search"), ("query", "source"),
            ("query", "from"), ("query", "to")} <= names
    assert {"200", "400", "401", "403", "404"} <= set(contacts["responses"])
    replay = paths["/api/v1/webhook-events/{id}/replay/"]["post"]
    assert "requestBody" not in replay
    assert {"202", "409", "401", "403", "404"} <= set(replay["responses"])
    queued = replay["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][queued]["properties"]) == {"status", "id"}
    payments = {p["name"]: p for p in paths["/api/v1/payments/"]["get"]["parameters"]}
    assert set(payments["status"]["schema"]["enum"]) == {"pending", "succeeded", "failed", "refunded",
                                                         "partially_refunded", "canceled"}
