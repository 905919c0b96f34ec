"""payment_gateway's events (EVENTS, the public contract: orders, reconciliation and ops consume them)."""
from marshmallow import Schema, fields, validate

from servicekit.events import EventEnvelope


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


class ReconciliationCounts(Schema):
    matched = fields.Integer(required=True)
    lines = fields.Integer()
    skipped = fields.Integer(metadata={"description": "failed channel lines for payments we never had"})
    unsettled = fields.Integer(metadata={"description": "open payments absent from the file, waiting for the next"})
    CHANNEL_MISSING = fields.Integer()
    LOCAL_MISSING = fields.Integer()
    LOCAL_NOT_SUCCESS = fields.Integer()
    LOCAL_NOT_FAILED = fields.Integer()
    AMOUNT_MISMATCH = fields.Integer()
    DUPLICATE_PAYMENT = fields.Integer()
    SETTLED_FAILED = fields.Integer()


class ReconciliationCompleted(EventEnvelope):
    """payment_gateway reconciliation.completed v1: a channel's file for a settlement date has been applied."""
    reconciliation_id = fields.String(required=True)
    channel = fields.String(required=True)
    settle_date = fields.String(required=True)
    counts = fields.Nested(ReconciliationCounts, required=True)


class ReconciliationFailed(EventEnvelope):
    """payment_gateway reconciliation.failed v1: the file could not be fetched or did not check; nothing applied."""
    reconciliation_id = fields.String(required=True)
    channel = fields.String(required=True)
    settle_date = fields.String(required=True)
    error = fields.String(required=True)


class ReconciliationMismatch(EventEnvelope):
    """payment_gateway reconciliation.mismatch v1: one mismatch for ops (refund, review), published once per
    ``mismatch_id`` however often the date is reconciled again."""
    reconciliation_id = fields.String(required=True)
    mismatch_id = fields.String(required=True)
    channel = fields.String(required=True)
    settle_date = fields.String(required=True)
    category = fields.String(required=True, validate=validate.OneOf([
        "CHANNEL_MISSING", "LOCAL_MISSING", "LOCAL_NOT_SUCCESS", "LOCAL_NOT_FAILED", "AMOUNT_MISMATCH",
        "DUPLICATE_PAYMENT", "SETTLED_FAILED"]))
    resolution = fields.String(required=True)
    payment_id = fields.String(allow_none=True)
    order_id = fields.String(allow_none=True)
    channel_txn_id = fields.String(allow_none=True)
    local_amount_fen = fields.Integer(allow_none=True)
    channel_amount_fen = fields.Integer(allow_none=True)


EVENTS.update({"reconciliation.completed": ReconciliationCompleted, "reconciliation.failed": ReconciliationFailed,
               "reconciliation.mismatch": ReconciliationMismatch})
