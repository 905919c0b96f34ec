"""Request and response shapes of the public API (API.md). They validate input and generate /openapi.json.

Shape only (types, presence, lengths); the rules behind a value (ID check digit, password policy, phone
format) belong to the service that owns the data and come back as its error codes.
"""
from marshmallow import RAISE, Schema, fields, validate

INSURANCE_TYPES = ["FE_PENSION", "FE_MEDICAL", "RR_PENSION", "RR_MEDICAL"]
SMS_PURPOSES = ["register", "login", "change_phone"]


def text(max_length, **kwargs):
    return fields.String(required=True, validate=validate.Length(min=1, max=max_length), **kwargs)


class Strict(Schema):
    class Meta:
        unknown = RAISE


# ---- errors ----------------------------------------------------------------------------------
class ErrorBody(Schema):
    code = fields.String(required=True, metadata={"example": "VALIDATION_ERROR"})
    message = fields.String(required=True, metadata={"description": "中文说明, shown to the payer"})
    details = fields.Dict(metadata={"description": "field → messages, or extra facts such as retry_after_seconds"})


class ErrorResponse(Schema):
    error = fields.Nested(ErrorBody, required=True)


# ---- identity ----------------------------------------------------------------------------------
class SmsCodeRequest(Strict):
    phone = text(11, metadata={"example": "13800138000"})
    purpose = fields.String(required=True, validate=validate.OneOf(SMS_PURPOSES))


class SmsCodeResponse(Schema):
    expires_in = fields.Integer(metadata={"description": "seconds the code stays valid"})


class RegisterRequest(Strict):
    id_number = text(32, metadata={"example": "34052419800101001X"})
    name = text(30, metadata={"example": "张三"})
    phone = text(11)
    password = text(64, load_only=True, metadata={"description": "8–64 characters, letters and digits"})
    sms_code = text(6, metadata={"description": "code sent with purpose `register`"})


class RegisterResponse(Schema):
    payer_id = fields.String()


class LoginRequest(Strict):
    id_number = text(32)
    name = text(30)
    password = text(64, load_only=True)
    insurance_type = fields.String(required=True, validate=validate.OneOf(INSURANCE_TYPES))
    sms_code = text(6, metadata={"description": "code sent to the registered phone with purpose `login`"})


class PayerSummary(Schema):
    payer_id = fields.String()
    name = fields.String()
    id_number_masked = fields.String(metadata={"example": "3405**********001X"})


class SessionResponse(Schema):
    token = fields.String()
    expires_at = fields.String(metadata={"description": "ISO 8601 with offset"})
    payer = fields.Nested(PayerSummary)
    insurance_type = fields.String()


class PhoneChangeRequest(Strict):
    new_phone = text(11)
    old_phone_code = text(6)
    new_phone_code = text(6)


class PhoneChangeResponse(Schema):
    phone_masked = fields.String(metadata={"example": "139****0000"})


class RelatedPayer(PayerSummary):
    is_self = fields.Boolean()


class RelatedPayersResponse(Schema):
    payers = fields.List(fields.Nested(RelatedPayer))


# ---- health ------------------------------------------------------------------------------------
class HealthResponse(Schema):
    status = fields.String(metadata={"example": "ok"})
    checks = fields.Dict()
