"""Request and response shapes of orders, channels, payments and channel notifications (API.md)."""
from marshmallow import Schema, fields, validate

from gateway.schemas import Strict


class CreateOrderRequest(Strict):
    plan_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)), load_default=None,
                           validate=validate.Length(min=1, max=240),
                           metadata={"description": "the first k payable plans, oldest first; omit for all payable"})


class OrderRecord(Schema):
    plan_id = fields.String()
    period = fields.String(metadata={"example": "2026-01"})
    amount = fields.String(metadata={"example": "350.00"})
    tax_ticket_no = fields.String(metadata={"description": "电子税票号码, once paid"})


class OrderResponse(Schema):
    order_id = fields.String()
    status = fields.String(validate=validate.OneOf(["pending", "paying", "paid", "failed", "expired", "unknown"]))
    amount = fields.String(metadata={"example": "700.00"})
    plan_ids = fields.List(fields.String())
    records = fields.List(fields.Nested(OrderRecord))
    expires_at = fields.String(metadata={"description": "ISO 8601; an unpaid order releases its plans then"})
    paid_at = fields.String()
    payment_id = fields.String(allow_none=True)
    channel = fields.String(allow_none=True)
    message = fields.String(metadata={"example": "您已经付款700.00元"})


class Channel(Schema):
    code = fields.String(metadata={"example": "unionpay"})
    name = fields.String(metadata={"example": "云闪付"})


class ChannelsResponse(Schema):
    channels = fields.List(fields.Nested(Channel))


class CreatePaymentRequest(Strict):
    channel = fields.String(required=True, validate=validate.Length(min=1, max=32), metadata={"example": "unionpay"})


class PaymentResponse(Schema):
    payment_id = fields.String()
    order_id = fields.String()
    channel = fields.String()
    amount = fields.String()
    pay_url = fields.String(metadata={"description": "the channel's pay page (确认支付)"})


class PaymentsQuery(Strict):
    paid_from = fields.String(required=True, metadata={"example": "2026-01-01"})
    paid_to = fields.String(required=True, metadata={"example": "2026-12-31"})


class PaymentItem(Schema):
    payment_id = fields.String()
    order_id = fields.String()
    channel = fields.String()
    amount = fields.String()
    status = fields.String()
    paid_at = fields.String(allow_none=True)
    channel_txn_id = fields.String(allow_none=True)


class PaymentsResponse(Schema):
    payments = fields.List(fields.Nested(PaymentItem))
    message = fields.String(metadata={"example": "未查询到缴费记录"})


class NotificationAck(Schema):
    result = fields.String()
