"""缴费记录 query, 证明开具 (缴费证明 / 完税证明 PDFs) and the public certificate verification.

The request/response shapes live here (not in gateway/schemas.py) because only these routes use them; they
still generate /openapi.json through ``endpoint``.
"""
import base64
import logging
from urllib.parse import quote

import eventlet
from marshmallow import EXCLUDE, Schema, fields, validate
from werkzeug.wrappers import Response

from servicekit import config as cfg
from servicekit.errors import AppError

from gateway.http import call, endpoint
from gateway.schemas import Strict

log = logging.getLogger(__name__)

PERIOD = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="费款所属期格式应为YYYY-MM")
DAY = validate.Regexp(r"^\d{4}-\d{2}-\d{2}$", error="日期格式应为YYYY-MM-DD")
EMPTY_RULE = ("An empty result is not an error: 200 with `records: []` and `message: \"未查询到缴费记录\"` (the "
              "seed's wording), so a front-end shows the message. `NO_RECORDS` (404) is reserved for asking a "
              "certificate of nothing (POST /api/v1/me/certificates).")


class Query(Schema):
    class Meta:
        unknown = EXCLUDE  # front-ends add cache-busters; only the named parameters count


class PeriodRangeQuery(Query):
    period_from = fields.String(required=True, validate=PERIOD, metadata={"example": "2024-01"})
    period_to = fields.String(required=True, validate=PERIOD, metadata={"example": "2024-12"})


class PaidRangeQuery(Query):
    paid_from = fields.String(required=True, validate=DAY, metadata={"example": "2024-01-01"})
    paid_to = fields.String(required=True, validate=DAY, metadata={"example": "2024-12-31"})


class PaidRecord(Schema):
    record_id = fields.String(metadata={"description": "stable id of one paid plan; select it for a certificate"})
    period = fields.String(metadata={"description": "费款所属期 YYYY-MM"})
    amount = fields.String(metadata={"example": "350.00"})
    paid_at = fields.String(metadata={"description": "入库 (payment) time, ISO 8601 +08:00"})
    tax_ticket_no = fields.String(metadata={"description": "电子税票号码"})
    insurance_type = fields.String()
    insurance_name = fields.String(metadata={"example": "灵活就业养老保险"})
    plan_id = fields.String()
    order_id = fields.String()
    payment_id = fields.String()
    channel = fields.String()


class RecordsResponse(Schema):
    records = fields.List(fields.Nested(PaidRecord))
    count = fields.Integer()
    total = fields.String(metadata={"example": "1050.00"})
    message = fields.String(metadata={"description": "`未查询到缴费记录` when the list is empty"})


class CertificateRequest(Strict):
    kind = fields.String(required=True, validate=validate.OneOf(["payment", "tax"]),
                         metadata={"description": "`payment` 缴费证明 (masked ID) or `tax` 完税证明"})
    paid_from = fields.String(required=True, validate=DAY)
    paid_to = fields.String(required=True, validate=DAY)
    record_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                             validate=validate.Length(max=200),
                             metadata={"description": "records to certify (default: all paid in the range)"})


class VerificationResponse(Schema):
    valid = fields.Boolean()
    code = fields.String()
    certificate_no = fields.String()
    kind = fields.String()
    kind_name = fields.String()
    issued_at = fields.String()
    payer_name_masked = fields.String(metadata={"example": "张*"})
    insurance_type = fields.String()
    total = fields.String()
    record_count = fields.Integer()
    periods = fields.List(fields.String())


class CertsRoutes:
    @endpoint("GET", "/api/v1/me/records", summary="缴费记录 by 费款所属期", tag="records", query=PeriodRangeQuery(),
              response=RecordsResponse(),
              description="One record per paid plan of the session payer and insurance type whose 费款所属期 is in "
                          "[period_from, period_to] (inclusive, at most 36 months). " + EMPTY_RULE)
    def my_records(self, request, principal, query):
        return call(self.certs_rpc.records, principal["payer_id"], principal["insurance_type"],
                    query["period_from"], query["period_to"])

    @endpoint("GET", "/api/v1/me/certificates/records", summary="Paid records a certificate can cover (证明开具)",
              tag="certificates", query=PaidRangeQuery(), response=RecordsResponse(),
              description="Records of the session payer and insurance type paid (入库) between paid_from and "
                          "paid_to, Asia/Shanghai dates, inclusive, at most 366 days. " + EMPTY_RULE)
    def certificate_records(self, request, principal, query):
        return call(self.certs_rpc.certificate_records, principal["payer_id"], principal["insurance_type"],
                    query["paid_from"], query["paid_to"])

    @endpoint("POST", "/api/v1/me/certificates", summary="Issue a 缴费证明 or 完税证明 as PDF", tag="certificates",
              body=CertificateRequest(), content_type="application/pdf",
              errors=("NO_RECORDS", "NOT_FOUND", "SERVICE_UNAVAILABLE"),
              description="Answers the PDF (A4) with headers `X-Certificate-Code` (the verification code, also "
                          "printed with a QR code) and `X-Certificate-No`. Covers the records paid in the range, or "
                          "exactly `record_ids` when given: an id that is not the session payer's record of this "
                          "insurance type paid in the range refuses the whole request (`NOT_FOUND`, nothing "
                          "issued); nothing to certify (empty range or empty `record_ids`) is `NO_RECORDS`.")
    def issue_certificate(self, request, principal, body):
        issued = self._certs_call(self.certs_rpc.issue_certificate, principal["payer_id"],
                                  principal["insurance_type"], body["kind"], body["paid_from"], body["paid_to"],
                                  body.get("record_ids"))
        pdf = base64.b64decode(issued["pdf_base64"])
        ascii_name = f"certificate-{issued['kind']}-{issued['certificate_no']}.pdf"
        return Response(pdf, status=200, content_type="application/pdf", headers={
            "X-Certificate-Code": issued["code"],
            "X-Certificate-No": issued["certificate_no"],
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; "
                                   f"filename*=UTF-8''{quote(issued['filename'])}",
            "Cache-Control": "no-store",
        })

    @endpoint("GET", "/api/v1/certificates/{code}", summary="Verify a certificate (public, no token)",
              tag="certificates", auth=None, response=VerificationResponse(), errors=("NOT_FOUND", "RATE_LIMITED"),
              description="The code printed on the certificate (case and dashes do not matter). Answers what a "
                          "verifier compares with the paper: kind, issue time, masked name, total and record count; "
                          "never the ID number. Unknown codes are `NOT_FOUND`.")
    def verify_certificate(self, request, code):
        self.throttle_client(request, "certificate-verify")
        return call(self.certs_rpc.verify, code)

    def _certs_call(self, method, *args):
        """Rendering takes longer than a plain RPC: its own, configurable deadline."""
        seconds = cfg.integer(self.config, "CERT_RPC_TIMEOUT_SECONDS", 60)
        try:
            with eventlet.Timeout(seconds):
                return method(*args)
        except eventlet.Timeout:
            log.error("certificate RPC timed out after %s s", seconds)
            raise AppError("SERVICE_UNAVAILABLE", "证明生成超时，请稍后再试") from None
