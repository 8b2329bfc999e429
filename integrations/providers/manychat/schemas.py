"""What the ManyChat handler reads (see ``integrations.providers.schema``).

The body is built by the flow author: ManyChat's "Full Subscriber Data", either as the body itself
or wrapped as ``{"subscriber": {...}}``. Custom fields come as an object or as ManyChat's list of
``{name, value}``; both become ``{name: value}``.
"""

from typing import Annotated, Any

from pydantic import BeforeValidator, model_validator

from contacts.values import clean_json
from integrations.providers.schema import Email, Id, Schema, Text


def _custom_fields(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        return clean_json(value)
    if isinstance(value, list):
        return clean_json({
            str(item["name"]): item.get("value")
            for item in value
            if isinstance(item, dict) and item.get("name") not in (None, "") and not isinstance(item["name"], (dict, list))
        })
    raise ValueError("is neither an object nor a list of {name, value}")


class Subscriber(Schema):
    id: Id
    first_name: Text = ""
    last_name: Text = ""
    name: Text = ""
    email: Email = ""
    phone: Text = ""
    whatsapp_phone: Text = ""
    custom_fields: Annotated[dict, BeforeValidator(_custom_fields)] = {}

    @model_validator(mode="before")
    @classmethod
    def unwrap(cls, data: Any) -> Any:
        """``{"subscriber": {...}}`` is read as the subscriber itself."""
        if isinstance(data, dict) and "subscriber" in data:
            if not isinstance(data["subscriber"], dict):
                raise ValueError("has a `subscriber` that is not an object")
            return data["subscriber"]
        return data
