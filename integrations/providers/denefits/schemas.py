"""What the Denefits handlers read (our documented shape, mapped by the Make.com scenario; see
``handlers.py`` and ``integrations.providers.schema``). Amounts are in major units."""

from decimal import Decimal

from integrations.providers.schema import Currency, Id, MajorAmount, Moment, RequiredEmail, Schema, Text


class Customer(Schema):
    email: RequiredEmail
    first_name: Text = ""
    last_name: Text = ""
    name: Text = ""
    phone: Text = ""


class Contract(Schema):
    id: Id | None = None
    amount: MajorAmount | None = None
    currency: Currency | None = None
    installments: int | None = None
    status: Text = ""


class Payment(Schema):
    id: Id
    amount: MajorAmount = Decimal(0)
    currency: Currency | None = None
    paid_at: Moment = None
    failed_at: Moment = None
    reason: Text = ""


class SignedContract(Contract):
    id: Id


class ContractCreated(Schema):
    customer: Customer
    contract: SignedContract


class PaymentEvent(Schema):
    customer: Customer
    payment: Payment
    contract: Contract | None = None


SCHEMAS = {
    "contract.created": ContractCreated,
    "payment.received": PaymentEvent,
    "payment.failed": PaymentEvent,
}
