"""What the Perspective handler reads (see ``handlers.py`` for the shape and
``integrations.providers.schema``). The contact's own fields vary by funnel, so the contact is
checked to be an object and its values are read by the handler; the money-free lead needs no more."""

from typing import Annotated, Any

from pydantic import BeforeValidator

from contacts.values import clean_json
from integrations.providers.schema import JsonObject, Schema, Text


def _answers(value: Any) -> dict:
    """``{"question": "answer"}`` or ``[{"question" | "label" | "name", "answer" | "value"}, …]``."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return clean_json(value)
    if not isinstance(value, list):
        raise ValueError("is neither an object nor a list of questions and answers")
    found = {}
    for item in value:
        if isinstance(item, dict):
            label = item.get("question") or item.get("label") or item.get("name")
            if label and not isinstance(label, (dict, list)):
                found[str(label)] = item.get("answer", item.get("value"))
    return clean_json(found)


class Funnel(Schema):
    id: Text = ""
    name: Text = ""


class Lead(Schema):
    contact: JsonObject | None = None
    funnel: Funnel | None = None
    answers: Annotated[dict, BeforeValidator(_answers)] = {}


SCHEMAS = {"lead": Lead, "lead.created": Lead, "form.submitted": Lead}
