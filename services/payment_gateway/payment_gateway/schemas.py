"""payment_gateway's events (EVENTS, the public contract: orders, reconciliation and ops consume them)."""
from marshmallow import Schema, fields, validate


class EventEnvelope(Schema):
    event_id = fields.String(required=True)
    occurred_at = fields.String(required=True)
    schema_version = fields.Integer(required=True)


class PaymentSucceeded(EventEnvelope):
    """payment_gateway payment.succeeded v1: the channel confirmed the money (notification or status query)."""
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    channel = fields.String(required=True)
    channel_txn_id = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    paid_at = fields.String(required=True)
    settle_date = fields.String(allow_none=True)
    source = fields.String(validate=validate.OneOf(["notification", "query", "reconciliation"]))


class PaymentFailed(EventEnvelope):
    """payment_gateway payment.failed v1: the channel says no money was taken; the order fails, plans free."""
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    channel = fields.String(required=True)
    reason = fields.String(required=True)


class PaymentUnknown(EventEnvelope):
    """payment_gateway payment.unknown v1: the channel cannot tell (or the amount differed); plans stay locked."""
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    channel = fields.String(required=True)
    reason = fields.String(required=True)


EVENTS = {"payment.succeeded": PaymentSucceeded, "payment.failed": PaymentFailed, "payment.unknown": PaymentUnknown}
