"""What orders sends over the wire: its events (EVENTS, the public contract) and the events it consumes."""
from marshmallow import Schema, fields, validate

from servicekit.events import EventEnvelope


class Payer(Schema):
    payer_id = fields.String(required=True)
    id_number = fields.String(required=True)
    name = fields.String(required=True)


class PaidRecord(Schema):
    plan_id = fields.String(required=True)
    period = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    tax_ticket_no = fields.String(required=True, metadata={"description": "电子税票号码, one per record, assigned once"})


class OrderPaid(EventEnvelope):
    """orders order.paid v1: the money for an order is confirmed; each plan record got its 电子税票号码."""
    order_id = fields.String(required=True)
    payer = fields.Nested(Payer, required=True)
    insurance_type = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    paid_at = fields.String(required=True)
    payment_id = fields.String(required=True)
    channel = fields.String(required=True)
    channel_txn_id = fields.String(required=True)
    records = fields.List(fields.Nested(PaidRecord), required=True)


class OrderReleased(EventEnvelope):
    """orders order.released v1: the order ended unpaid; its plans are payable again."""
    order_id = fields.String(required=True)
    plan_ids = fields.List(fields.String(), required=True)
    reason = fields.String(required=True, validate=validate.OneOf(["failed", "expired"]))


EVENTS = {"order.paid": OrderPaid, "order.released": OrderReleased}


# ---- consumed: payment_gateway's events (its own schemas.py is the owner; validated here on the way in) ----
class PaymentSucceeded(EventEnvelope):
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    channel = fields.String(required=True)
    channel_txn_id = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    paid_at = fields.String(required=True)


class PaymentFailed(EventEnvelope):
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    channel = fields.String(required=True)
    reason = fields.String(required=True)


class PaymentUnknown(EventEnvelope):
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    channel = fields.String(required=True)
    reason = fields.String(required=True)


EVENTS_CONSUMED = {("payment_gateway", "payment.succeeded"): PaymentSucceeded,
                   ("payment_gateway", "payment.failed"): PaymentFailed,
                   ("payment_gateway", "payment.unknown"): PaymentUnknown}
