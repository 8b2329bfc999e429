"""The smallest correct Stripe receiver as issue 11 defines its yardstick: a Django view with no
middleware. ``make bench`` measures En Garde against it and, beside it, against the bare WSGI
function of ``minimal_receiver`` (the same work without Django's request cycle).

The view does what ``minimal_receiver`` does and nothing else: check the ``Stripe-Signature``
(HMAC-SHA256 over ``"<t>.<body>"``, constant time, any ``v1`` may match, 300 s tolerance: the same
``verified``), parse the JSON, store the raw event before answering (``INSERT ... ON CONFLICT
(event_id) DO NOTHING`` through Django's connection, kept for ``CONN_MAX_AGE`` and binding its
parameters server side like the full app's), answer 200. Django is configured here, in code: no
installed apps, no middleware, one URL.

Environment: ``MINIMAL_DATABASE_URL`` (a ``postgres://`` URL), ``MINIMAL_SIGNING_SECRET``. Served
as ``minimal_django:application`` from this folder (``--chdir bench``), as ``make bench`` does.
"""

from __future__ import annotations

import json
import os
import time
from urllib.parse import unquote, urlsplit

import django
from django.conf import settings

_url = urlsplit(os.environ.get("MINIMAL_DATABASE_URL", "postgres://localhost/postgres"))
settings.configure(
    DEBUG=False,
    SECRET_KEY="minimal-django-receiver-has-no-sessions-or-signing",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
    DATABASES={"default": {
        "ENGINE": "django.db.backends.postgresql", "NAME": _url.path.lstrip("/"),
        "USER": unquote(_url.username or ""), "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "", "PORT": str(_url.port or 5432), "CONN_MAX_AGE": 60,
        # As the full app binds (DB_SERVER_SIDE_BINDING, on by default): the same database work.
        "OPTIONS": {"server_side_binding": True},
    }},
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import OperationalError, connection  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from minimal_receiver import INSERT, verified  # noqa: E402

MAX_BODY_BYTES = 1024 * 1024


@csrf_exempt
def receive(request, tenant, source):
    if request.method != "POST":
        return JsonResponse({"status": "method_not_allowed"}, status=405)
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
        return JsonResponse({"status": "too_large"}, status=413)
    body = request.body
    if not verified(body, request.headers.get("Stripe-Signature", ""), time.time()):
        return JsonResponse({"status": "rejected"}, status=401)
    try:
        event_id = str(json.loads(body)["id"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"status": "malformed"}, status=400)
    try:
        with connection.cursor() as cursor:
            cursor.execute(INSERT, [event_id, body])
    except OperationalError:
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "received", "event_id": event_id})


urlpatterns = [path("api/webhooks/<str:tenant>/<str:source>/", receive)]

application = get_wsgi_application()
