"""The one place a request's text is refused before any of it can reach the database.

PostgreSQL cannot hold a NUL character in a text or JSON value: a NUL in a URL part
(``/api/webhooks/acme%00/stripe/``), a query parameter (``?status=%00``) or a header raised
``DataError`` wherever that text became a query parameter, a 500 in every view that looked
something up with it. No platform, browser or API client sends one, so the request is refused
here with 400, before resolution, authentication or any view. (Invalid UTF-8 in the URL never
gets this far as text: Django re-escapes it in the path and replaces it in the query.)
Bodies are the views' business: the receiver stores them as bytes and refuses unstorable event
types and ids itself (``webhooks.ingest``); forms and serializers refuse NUL on their own.
"""

from __future__ import annotations

from django.http import JsonResponse

NUL = "\x00"


def unstorable_part(request) -> str | None:
    """Which part of the request holds a NUL (``"path"``, ``"query"``, ``"header"``), or None."""
    if NUL in request.path_info:
        return "path"
    if any(NUL in key or any(NUL in value for value in values) for key, values in request.GET.lists()):
        return "query"
    if any(NUL in str(value) for name, value in request.META.items() if name.startswith("HTTP_")):
        return "header"
    return None


class RefuseUnstorableText:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        part = unstorable_part(request)
        if part:
            return JsonResponse({"status": "bad_request", "reason": f"a NUL character in the {part}"}, status=400)
        return self.get_response(request)
