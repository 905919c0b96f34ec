"""What identity sends over the wire: the authenticated principal and its events."""
from marshmallow import Schema, fields, validate

from servicekit.events import EventEnvelope

from identity.domain import INSURANCE_TYPES


class PrincipalSchema(Schema):
    """Answer of ``identity.authenticate``: who a token stands for. Never logged (carries the full ID)."""
    payer_id = fields.String(required=True)
    session_id = fields.String(required=True)
    insurance_type = fields.String(required=True, validate=validate.OneOf(list(INSURANCE_TYPES)))
    id_number = fields.String(required=True)
    name = fields.String(required=True)
    phone = fields.String(required=True)


class PayerRegistered(EventEnvelope):
    """identity.payer.registered v1: a payer completed 注册."""
    payer_id = fields.String(required=True)


class PayerPhoneChanged(EventEnvelope):
    """identity.payer.phone_changed v1: the registered phone changed (old and new are not carried)."""
    payer_id = fields.String(required=True)


EVENTS = {"payer.registered": PayerRegistered, "payer.phone_changed": PayerPhoneChanged}
