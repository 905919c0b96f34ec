"""What plans sends and receives over the wire: its events, and the orders events it consumes."""
from marshmallow import EXCLUDE, Schema, fields, validate

from servicekit.events import EventEnvelope

from plans.domain import INSURANCE_TYPES


class PlanEvent(EventEnvelope):
    plan_id = fields.String(required=True)
    bureau = fields.String(required=True, validate=validate.OneOf(["hr", "medical"]))
    id_number = fields.String(required=True)
    insurance_type = fields.String(required=True, validate=validate.OneOf(list(INSURANCE_TYPES)))
    period = fields.String(required=True)
    status = fields.String(required=True)


class PlanSynced(PlanEvent):
    """plans.plan.synced v1: a new plan arrived from a bureau (or a 牡丹江 declaration was confirmed)."""
    amount_fen = fields.Integer(required=True)


class PlanRevised(PlanEvent):
    """plans.plan.revised v1: the bureau sent a new version of a plan. ``applied`` false: recorded but refused
    (``reason`` "paid") or kept until the plan's open order ends (``reason`` "locked")."""
    old_amount_fen = fields.Integer(required=True)
    new_amount_fen = fields.Integer(required=True)
    old_period = fields.String(required=True)
    new_period = fields.String(required=True)
    applied = fields.Boolean(required=True)
    reason = fields.String(allow_none=True)


class PlanWithdrawn(PlanEvent):
    """plans.plan.withdrawn v1: the bureau withdrew a plan, or its 牡丹江 declaration was voided (``reason``
    "void"). ``applied`` false: the plan is paid or in an open order and stays so (``reason`` its status)."""
    applied = fields.Boolean(required=True)
    reason = fields.String(allow_none=True)


EVENTS = {"plan.synced": PlanSynced, "plan.revised": PlanRevised, "plan.withdrawn": PlanWithdrawn}


# ---- consumed: events of the orders service --------------------------------------------------------
class PayerRef(Schema):
    class Meta:
        unknown = EXCLUDE

    payer_id = fields.String(required=True)
    id_number = fields.String(required=True)
    name = fields.String(load_default=None)


class PaidRecord(Schema):
    class Meta:
        unknown = EXCLUDE

    plan_id = fields.String(required=True)
    period = fields.String(load_default=None)
    amount_fen = fields.Integer(load_default=None)
    tax_ticket_no = fields.String(load_default=None, allow_none=True)


class OrderPaid(EventEnvelope):
    order_id = fields.String(required=True)
    payer = fields.Nested(PayerRef, required=True)
    insurance_type = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    paid_at = fields.String(required=True)
    records = fields.List(fields.Nested(PaidRecord), required=True, validate=validate.Length(min=1))


class OrderReleased(EventEnvelope):
    order_id = fields.String(required=True)
    plan_ids = fields.List(fields.String(), required=True)
    reason = fields.String(load_default=None)


EVENTS_CONSUMED = {("orders", "order.paid"): OrderPaid, ("orders", "order.released"): OrderReleased}
