"""What certs reads off the wire (the ``order.paid`` event, consumer side) and what it answers over RPC.

The consumer schema ignores fields it does not know (``EXCLUDE``): the producer may add fields to
``order.paid`` v1 without breaking us; it may not rename or drop these.
"""
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from certs.domain import INSURANCE_TYPES, KINDS

PERIOD = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="费款所属期格式应为YYYY-MM")


class Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class PaidPayer(Lenient):
    payer_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    id_number = fields.String(required=True, validate=validate.Length(equal=18))
    name = fields.String(required=True, validate=validate.Length(min=1, max=60))


class PaidRecord(Lenient):
    plan_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    period = fields.String(required=True, validate=PERIOD)
    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    tax_ticket_no = fields.String(required=True, validate=validate.Length(min=1, max=64))


class OrderPaid(Lenient):
    """orders' ``order.paid`` v1: an order's payment was confirmed; one line per paid plan (费款所属期)."""
    event_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    occurred_at = fields.String(required=True)
    schema_version = fields.Integer(required=True, validate=validate.Equal(1))
    order_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    payer = fields.Nested(PaidPayer, required=True)
    insurance_type = fields.String(required=True, validate=validate.OneOf(list(INSURANCE_TYPES)))
    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    paid_at = fields.AwareDateTime(required=True, format="iso")
    payment_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    channel = fields.String(required=True, validate=validate.Length(min=1, max=32))
    channel_txn_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    records = fields.List(fields.Nested(PaidRecord), required=True, validate=validate.Length(min=1))
    # Optional: the enrolment's region, when the producer sends it, picks the issuing 税务机关.
    region_code = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\d{6}$"))

    @validates_schema
    def lines_add_up(self, data, **kwargs):
        if sum(line["amount_fen"] for line in data["records"]) != data["amount_fen"]:
            raise ValidationError("records do not add up to amount_fen", "records")
        if len({line["plan_id"] for line in data["records"]}) != len(data["records"]):
            raise ValidationError("a plan appears twice", "records")


# ---- RPC answers (documented; the gateway publishes its own copy in /openapi.json) ---------------------
class RecordView(Schema):
    record_id = fields.String()
    period = fields.String()
    amount = fields.String()
    paid_at = fields.String()
    tax_ticket_no = fields.String()
    insurance_type = fields.String()
    insurance_name = fields.String()
    plan_id = fields.String()
    order_id = fields.String()
    payment_id = fields.String()
    channel = fields.String()


class RecordsAnswer(Schema):
    records = fields.List(fields.Nested(RecordView))
    count = fields.Integer()
    total = fields.String()
    message = fields.String()


class Verification(Schema):
    valid = fields.Boolean()
    code = fields.String()
    certificate_no = fields.String()
    kind = fields.String(validate=validate.OneOf(list(KINDS)))
    kind_name = fields.String()
    issued_at = fields.String()
    payer_name_masked = fields.String()
    insurance_type = fields.String()
    total = fields.String()
    record_count = fields.Integer()
    periods = fields.List(fields.String())


EVENTS_CONSUMED = {("orders", "order.paid"): OrderPaid}
