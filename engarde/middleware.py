"""The one place a request's text is refused or cleaned before any of it can reach the database.

PostgreSQL cannot hold a NUL character in a text or JSON value: a NUL in a URL part
(``/api/webhooks/acme%00/stripe/``), a query parameter (``?status=%00``) or a header raised
``DataError`` wherever that text became a query parameter, a 500 in every view that looked
something up with it. No platform, browser or API client sends one. So, before resolution,
authentication or any view:

* the API and the webhook receiver (``/api/``) answer 400 with a JSON reason;
* pages answer 400 to a NUL in the path or a header, and drop NUL from query values (a person's
  search box or a pasted link still gets its page, filtered by what remains).

(Invalid UTF-8 in the URL never gets this far as text: Django re-escapes it in the path and
replaces it in the query.) Bodies are the views' business: the receiver stores them as bytes and
refuses unstorable event types and ids itself (``webhooks.ingest``); forms and serializers refuse
NUL on their own.
"""

from __future__ import annotations

from django.http import HttpResponseBadRequest, JsonResponse, QueryDict

NUL = "\x00"


def _query_has_nul(query: QueryDict) -> bool:
    return any(NUL in key or any(NUL in value for value in values) for key, values in query.lists())


def unstorable_part(request) -> str | None:
    """Which part of the request holds a NUL (``"path"``, ``"query"``, ``"header"``), or None."""
    if NUL in request.path_info:
        return "path"
    # One scan of the headers' text joined (every request passes here: cheaper than one per header).
    if NUL in "".join([str(value) for name, value in request.META.items() if name.startswith("HTTP_")]):
        return "header"
    # No query string, no query to parse. (Any other one is parsed: a sender's charset decides how
    # it decodes, and UTF-7's ``+AAA-`` is a NUL too, so no cheaper look at the raw text will do.)
    if request.META.get("QUERY_STRING") and _query_has_nul(request.GET):
        return "query"
    return None


def without_nul(query: QueryDict) -> QueryDict:
    cleaned = QueryDict(mutable=True)
    for key, values in query.lists():
        cleaned.setlist(key.replace(NUL, ""), [value.replace(NUL, "") for value in values])
    cleaned._mutable = False
    return cleaned


class RefuseUnstorableText:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        part = unstorable_part(request)
        if part is None:
            return self.get_response(request)
        if request.path_info.startswith("/api/"):
            return JsonResponse({"status": "bad_request", "reason": f"a NUL character in the {part}"}, status=400)
        if part == "query":
            request.GET = without_nul(request.GET)
            return self.get_response(request)
        return HttpResponseBadRequest(f"Bad request: a NUL character in the {part}.", content_type="text/plain")
