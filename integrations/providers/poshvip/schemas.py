"""What the Posh.VIP handlers read, per event type (see ``integrations.providers.schema``)."""

from integrations.providers.schema import Currency, Email, Id, JsonObject, MajorAmount, Moment, Schema, Text


class Person(Schema):
    """A purchase's customer, a ticket's holder, a transfer's receiver."""

    email: Email = ""
    first_name: Text = ""
    last_name: Text = ""
    phone: Text = ""


class Purchase(Schema):
    id: Id
    event_id: Text = ""
    event_name: Text = ""
    #: currency units (45.00) by default; whole cents when the tenant set ``amount_unit``.
    total_amount: MajorAmount | None = None
    currency: Currency | None = None
    tickets: list[JsonObject] = []
    customer: Person | None = None


class Ticket(Schema):
    id: Text = ""
    holder: Person | None = None


class Transfer(Schema):
    to: Person | None = None


class PurchaseEvent(Schema):
    purchase: Purchase
    created_at: Moment = None


class TicketEvent(PurchaseEvent):
    ticket: Ticket | None = None
    transfer: Transfer | None = None


SCHEMAS = {
    "purchase.created": PurchaseEvent,
    "purchase.refunded": PurchaseEvent,
    "ticket.checked_in": TicketEvent,
    "ticket.transferred": TicketEvent,
}
