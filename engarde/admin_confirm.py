"""A confirmation step before an admin action that changes state (replay, deactivate).

``@confirm_first(...)`` on an action: the first press shows a page listing what is about to happen
to which rows, with "Yes" and "No"; only the "Yes" (which posts the same selection back with
``post=yes``, as Django's own delete confirmation does) runs the action.
"""

from functools import wraps

from django.contrib.admin import helpers
from django.template.response import TemplateResponse


def confirm_first(title: str, consequence: str, button: str):
    def decorate(action):
        @wraps(action)
        def wrapper(modeladmin, request, queryset):
            if request.POST.get("post") == "yes":
                return action(modeladmin, request, queryset)
            return TemplateResponse(request, "admin/confirm_action.html", {
                **modeladmin.admin_site.each_context(request),
                "title": title, "consequence": consequence, "button": button,
                "objects": list(queryset[:200]), "count": queryset.count(),
                "action": action.__name__, "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                "opts": modeladmin.model._meta, "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            })

        return wrapper

    return decorate
