"""Ops: the next-day reconciliation with a channel (ops bearer token, never a payer's)."""
from marshmallow import Schema, fields, validate

from gateway.http import call, endpoint
from gateway.schemas import Strict


class ReconciliationRequest(Strict):
    channel = fields.String(required=True, validate=validate.Length(min=1, max=32),
                            metadata={"example": "unionpay"})
    date = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-\d{2}-\d{2}$"),
                         metadata={"description": "settlement date (清算日期), YYYY-MM-DD", "example": "2026-03-11"})


class ReconciliationStarted(Schema):
    reconciliation_id = fields.String()


class ReconciliationQuery(Strict):
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=5000))


class Mismatch(Schema):
    category = fields.String(metadata={"description": "CHANNEL_MISSING, LOCAL_MISSING, LOCAL_NOT_SUCCESS, "
                                                      "LOCAL_NOT_FAILED, AMOUNT_MISMATCH, DUPLICATE_PAYMENT, "
                                                      "SETTLED_FAILED"})
    payment_id = fields.String(allow_none=True)
    channel_txn_id = fields.String(allow_none=True)
    local_amount = fields.String(allow_none=True, metadata={"example": "350.00"})
    channel_amount = fields.String(allow_none=True)
    resolution = fields.String(metadata={"description": "marked_paid, marked_failed, carried_over, flagged, "
                                                        "flagged_refund, flagged_never_paid, flagged_never_reversed, "
                                                        "flagged_order_closed"})
    line = fields.Integer(allow_none=True, metadata={"description": "line of the statement file, if any"})


class ReconciliationReport(Schema):
    reconciliation_id = fields.String()
    channel = fields.String()
    date = fields.String()
    status = fields.String(metadata={"description": "running, completed or failed"})
    counts = fields.Dict(metadata={"description": "matched, skipped, unsettled, lines and one count per category"})
    mismatches = fields.List(fields.Nested(Mismatch), metadata={"description": "from `offset`, at most `limit`"})
    mismatches_total = fields.Integer(allow_none=True)
    progress = fields.Dict(metadata={"description": "lines_done, lines_total"})
    error = fields.String(allow_none=True, metadata={"description": "why a failed run failed (nothing applied)"})
    statement = fields.Dict(allow_none=True, metadata={"description": "lines, successes, totals, sha256 of the file"})


class OpsRoutes:
    @endpoint("POST", "/api/v1/ops/reconciliations", summary="Reconcile a channel's settlement date (对账)",
              tag="ops", auth="ops", body=ReconciliationRequest(), response=ReconciliationStarted(), status=202,
              errors=("CONFLICT",),
              description="Fetches the channel's statement for the date, checks it whole, then matches every line "
                          "against our payments in the background. CONFLICT while a run for the same channel and "
                          "date is running; a later run reports the state as it is then and changes nothing twice.")
    def start_reconciliation(self, request, body):
        answer = call(self.payment_gateway_rpc.start_reconciliation, body["channel"], body["date"])
        return {"reconciliation_id": answer["reconciliation_id"]}

    @endpoint("GET", "/api/v1/ops/reconciliations/{reconciliation_id}", summary="A reconciliation's report",
              tag="ops", auth="ops", query=ReconciliationQuery(), response=ReconciliationReport(),
              errors=("NOT_FOUND",))
    def get_reconciliation(self, request, query, reconciliation_id):
        return call(self.payment_gateway_rpc.get_reconciliation, reconciliation_id, query["offset"], query["limit"])
