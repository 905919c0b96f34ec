"""Request and response shapes of 参保信息, 缴费计划 and 牡丹江 缴费申报 (API.md), for validation and /openapi.json."""
from marshmallow import RAISE, Schema, fields, validate

PERIOD = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="费款所属期格式应为YYYY-MM")


class EnrollmentResponse(Schema):
    insurance_type = fields.String(metadata={"example": "FE_PENSION"})
    insurance_type_name = fields.String(metadata={"example": "灵活就业养老保险"})
    region_code = fields.String(metadata={"example": "230102"})
    status = fields.String(metadata={"description": "active | suspended | terminated"})
    enrolled_on = fields.String(allow_none=True, metadata={"example": "2020-01-01"})
    source = fields.String(metadata={"description": "tax_registry (synced from 人社) | medical_bureau (asked live)"})
    synced_at = fields.String(allow_none=True)
    declaration_mode = fields.Boolean(metadata={"description": "牡丹江 缴费申报 applies (plans come from declarations)"})


class PlanItem(Schema):
    plan_id = fields.String()
    period = fields.String(metadata={"example": "2025-01", "description": "费款所属期"})
    amount = fields.String(metadata={"example": "350.00"})
    status = fields.String(metadata={"description": "unpaid | locked (in an open order)"})
    deadline = fields.String(metadata={"description": "collection cut-off, ISO 8601 with offset (Asia/Shanghai)"})
    declaration_id = fields.String(allow_none=True)


class PlansResponse(Schema):
    plans = fields.List(fields.Nested(PlanItem), metadata={"description": "oldest period first"})
    message = fields.String(allow_none=True, metadata={"example": "当前没有可缴费计划"})
    advice = fields.String(allow_none=True, metadata={"description": "where to ask when the bureau sent no plan"})


class Grade(Schema):
    grade = fields.Integer(metadata={"example": 1})
    base_ratio = fields.String(metadata={"example": "0.60", "description": "of the average monthly wage"})
    base = fields.String(metadata={"example": "4440.00", "description": "monthly contribution base"})
    monthly_amount = fields.String(metadata={"example": "888.00", "description": "base × 20 %, to the fen"})


class DeclarationOptionsResponse(Schema):
    grades = fields.List(fields.Nested(Grade))
    rate = fields.String(metadata={"example": "0.20"})
    periods = fields.List(fields.String(), metadata={"description": "declarable periods, oldest first; a declaration "
                                                                   "takes the first k of them"})


class DeclarationRequest(Schema):
    class Meta:
        unknown = RAISE

    periods = fields.List(fields.String(validate=PERIOD), required=True,
                          validate=validate.Length(min=1, max=36))
    grade = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=50))


class DeclarationResponse(Schema):
    declaration_id = fields.String()
    status = fields.String(metadata={"description": "confirmed (核定) | voided"})
    plan_ids = fields.List(fields.String())
    periods = fields.List(fields.String())
    grade = fields.Integer()
    monthly_amount = fields.String(metadata={"example": "888.00"})


class DeclarationItem(DeclarationResponse):
    created_at = fields.String()


class DeclarationsResponse(Schema):
    declarations = fields.List(fields.Nested(DeclarationItem))


class DeclarationVoidResponse(Schema):
    declaration_id = fields.String()
    status = fields.String(metadata={"example": "voided"})
