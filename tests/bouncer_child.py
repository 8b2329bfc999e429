"""Run by tests/test_pgbouncer.py in a process of its own whose every database connection goes
through pgbouncer in transaction pooling mode: Stripe deliveries for two tenants from many
threads at once (each request a Django test client call, tasks in-process, so every delivery's
drain runs in the request's thread too), then what each tenant's own context shows. Prints one
line of JSON."""

import json
import sys
import threading

import django

django.setup()

from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402

from contacts.models import Contact, Payment  # noqa: E402
from tenants.context import tenant_context  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from webhooks import drain  # noqa: E402
from webhooks.models import WebhookLog  # noqa: E402
from webhooks.testing import post_stripe  # noqa: E402
from tests.test_reliability import stripe_event  # noqa: E402


def main(slugs: list[str], per_tenant: int, threads: int) -> dict:
    tenants = [Tenant.objects.get(slug=slug) for slug in slugs]
    jobs = [(tenant, i) for i in range(per_tenant) for tenant in tenants]  # interleaved
    answers: list = []
    lock = threading.Lock()

    def work(part):
        client = Client()
        try:
            for tenant, i in part:
                body = stripe_event(f"evt_{tenant.slug}_{i}", f"pi_{tenant.slug}_{i}", f"{i}@{tenant.slug}.example")
                response = post_stripe(client, tenant, body)
                with lock:
                    answers.append((response.status_code, response.content.decode()[:200]))
        except Exception as exc:  # reported in the answers: the test shows it
            with lock:
                answers.append(("error", repr(exc)[:300]))
        finally:
            connections.close_all()

    pool = [threading.Thread(target=work, args=(jobs[n::threads],)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    while drain.drain_once()[0]:  # whatever a drain left behind (a row locked past the claim's wait)
        pass
    seen = {}
    for tenant in tenants:
        with tenant_context(tenant):
            seen[tenant.slug] = {
                "statuses": sorted(set(WebhookLog.objects.values_list("status", flat=True))),
                "rows": WebhookLog.objects.count(),
                "payments": Payment.objects.count(),
                "emails": sorted({email.split("@")[1] for email in Contact.objects.values_list("email", flat=True)}),
            }
    return {"answers": sorted(set(map(tuple, answers))), "count": len(answers), "seen": seen}


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(main(args["slugs"], args["per_tenant"], args["threads"])))
