"""参保信息, 缴费计划 and 牡丹江 缴费申报 / 申报作废: the plans service behind the payer's session."""
from servicekit.money import fen_to_str

from gateway import plans_schemas as s
from gateway.http import call, endpoint

DECLARATION_ERRORS = ("CONFLICT", "SERVICE_UNAVAILABLE")


def _ratio(pct):
    return f"{pct // 100}.{pct % 100:02d}"


class PlansRoutes:
    @endpoint("GET", "/api/v1/me/enrollment", summary="参保信息 of the session's insurance type", tag="plans",
              response=s.EnrollmentResponse(), errors=("NOT_FOUND", "SERVICE_UNAVAILABLE"),
              description="RR_MEDICAL is asked of the medical bureau; the other types come from the HR bureau's "
                          "enrolments as synced into the tax registry.")
    def my_enrollment(self, request, principal):
        enrollment = call(self.plans_rpc.enrollment, principal["id_number"], principal["insurance_type"])
        enrollment.pop("name", None)
        return enrollment

    @endpoint("GET", "/api/v1/me/plans", summary="Payable plans (缴费计划), oldest period first", tag="plans",
              response=s.PlansResponse(), errors=("SERVICE_UNAVAILABLE",),
              description="Unpaid plans of the session's payer and insurance type, and plans in an open order "
                          "(status `locked`). Empty: `message` is 当前没有可缴费计划, with `advice` when the bureau "
                          "has sent no plan at all. `deadline` is the bureau's, else the next collection cut-off.")
    def my_plans(self, request, principal):
        answer = call(self.plans_rpc.payer_plans, principal["id_number"], principal["insurance_type"])
        return {"plans": [{"plan_id": p["plan_id"], "period": p["period"], "amount": fen_to_str(p["amount_fen"]),
                           "status": p["status"], "deadline": p["deadline"],
                           "declaration_id": p.get("declaration_id")} for p in answer["plans"]],
                "message": answer["message"], "advice": answer["advice"]}

    @endpoint("GET", "/api/v1/me/declaration-options", summary="牡丹江 缴费申报: grades and declarable periods",
              tag="plans", response=s.DeclarationOptionsResponse(), errors=DECLARATION_ERRORS,
              description="Only for FE_PENSION payers enrolled in a 牡丹江 region (2310xx); everyone else gets "
                          "CONFLICT (their plans are decided by the bureau).")
    def declaration_options(self, request, principal):
        options = call(self.plans_rpc.declaration_options, principal["id_number"], principal["insurance_type"])
        return {"grades": [{"grade": g["grade"], "base_ratio": _ratio(g["base_ratio_pct"]),
                            "base": fen_to_str(g["base_fen"]), "monthly_amount": fen_to_str(g["monthly_amount_fen"])}
                           for g in options["grades"]],
                "rate": _ratio(options["rate_pct"]), "periods": options["periods"]}

    @endpoint("POST", "/api/v1/me/declarations", summary="缴费申报 (牡丹江): declare periods at a grade",
              tag="plans", body=s.DeclarationRequest(), response=s.DeclarationResponse(), status=201,
              errors=DECLARATION_ERRORS + ("PLAN_SEQUENCE_VIOLATION",),
              description="The periods must be the first k declarable ones (no gaps). The HR bureau confirms "
                          "(核定) the declaration, after which its plans are payable.")
    def declare(self, request, principal, body):
        answer = call(self.plans_rpc.declare, principal["id_number"], principal["insurance_type"],
                      body["periods"], body["grade"])
        monthly = answer.pop("monthly_amount_fen")
        return {**answer, "monthly_amount": fen_to_str(monthly)}

    @endpoint("GET", "/api/v1/me/declarations", summary="The payer's 缴费申报, newest first (申报作废 picks from them)",
              tag="plans", response=s.DeclarationsResponse(),
              description="Status: submitted, confirmed (核定; voidable while none of its plans is paid or in an "
                          "open order), voiding, voided, failed.")
    def declarations(self, request, principal):
        items = call(self.plans_rpc.declarations, principal["id_number"], principal["insurance_type"])
        return {"declarations": [{**{k: v for k, v in d.items() if k != "monthly_amount_fen"},
                                  "monthly_amount": fen_to_str(d["monthly_amount_fen"])} for d in items]}

    @endpoint("DELETE", "/api/v1/me/declarations/{declaration_id}", summary="申报作废 (牡丹江)", tag="plans",
              response=s.DeclarationVoidResponse(), errors=("NOT_FOUND",) + DECLARATION_ERRORS,
              description="Allowed while none of its plans is paid or in an open order; otherwise CONFLICT.")
    def void_declaration(self, request, principal, declaration_id):
        return call(self.plans_rpc.void_declaration, principal["id_number"], principal["insurance_type"],
                    declaration_id)
