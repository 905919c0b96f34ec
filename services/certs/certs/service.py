"""certs: the paid-records read model (from ``order.paid``), 缴费记录 queries, 缴费证明/完税证明 PDFs and their
public verification. Thin entrypoints over ``domain``; PDFs render in a process pool (``dependencies``)."""
import base64
import logging

from nameko.dependency_providers import Config

from servicekit.clock import Clock
from servicekit.context import RequestContext
from servicekit.entrypoints import rpc
from servicekit.errors import AppError
from servicekit.events import ProcessedEvents
from servicekit.mongo import MongoDatabase
from servicekit.pii import pseudonym
from servicekit.reliable import DeadLetters, reliable_event_handler
from servicekit.runtime import ServiceRuntime

from certs import domain
from certs.dependencies import PdfRenderer, issuer_settings
from certs.repository import CertificateRepository, RecordRepository, ensure_indexes
from certs.schemas import OrderPaid

log = logging.getLogger(__name__)
CONSUMER = "certs.order_paid"
CERTIFICATE_STATUS_RENDERING, CERTIFICATE_STATUS_ISSUED = "rendering", "issued"  # see CertificateRepository


def _rule_error(violation: domain.RuleViolation):
    return AppError(violation.code, violation.message, violation.details)


class CertsService:
    name = "certs"

    config = Config()
    runtime = ServiceRuntime()
    db = MongoDatabase("certs", ensure_indexes)
    clock = Clock()
    request_id = RequestContext()
    renderer = PdfRenderer()
    dead_letters = DeadLetters()

    @rpc()
    def ping(self):
        return {"service": self.name, "ok": True}

    # ---- read model ------------------------------------------------------------------------------
    @reliable_event_handler("orders", "order.paid")
    def on_order_paid(self, payload):
        """Idempotent: processed event ids are recorded, and each record's key is (order, plan). A malformed
        event goes to dlq.certs at once; other failures are retried with back-off, then dead-lettered."""
        now = self.clock.now()
        paid = OrderPaid().load(payload)
        processed = ProcessedEvents(self.db, CONSUMER)
        if processed.already_processed(paid["event_id"]):
            return
        new = RecordRepository(self.db).upsert_from_order(paid, now)
        processed.record(paid["event_id"], now)
        log.info("order.paid for payer %s: %d new record(s)", pseudonym(paid["payer"]["payer_id"]), new)

    # ---- queries -----------------------------------------------------------------------------------
    @rpc()
    def records(self, payer_id, insurance_type, period_from, period_to):
        """缴费记录: one record per paid plan of this payer and insurance type, by 费款所属期 (inclusive)."""
        try:
            start, end = domain.check_period_range(period_from, period_to)
        except domain.RuleViolation as violation:
            raise _rule_error(violation) from None
        return domain.records_answer(RecordRepository(self.db).by_period(payer_id, insurance_type, start, end))

    @rpc()
    def certificate_records(self, payer_id, insurance_type, paid_from, paid_to):
        """Records a certificate can cover: paid (入库) between the two Asia/Shanghai dates, inclusive."""
        return domain.records_answer(self._certifiable(payer_id, insurance_type, paid_from, paid_to))

    def _certifiable(self, payer_id, insurance_type, paid_from, paid_to):
        try:
            start, end = domain.paid_window(paid_from, paid_to)
        except domain.RuleViolation as violation:
            raise _rule_error(violation) from None
        return RecordRepository(self.db).by_paid_at(payer_id, insurance_type, start, end)

    # ---- certificates --------------------------------------------------------------------------------
    @rpc()
    def issue_certificate(self, payer_id, insurance_type, kind, paid_from, paid_to, record_ids=None):
        """Render and register a 缴费证明 (``payment``) or 完税证明 (``tax``); answers the PDF in base64."""
        if kind not in domain.KINDS:
            raise AppError("VALIDATION_ERROR", details={"kind": ["证明种类应为payment或tax"]})
        if record_ids is not None and (not isinstance(record_ids, list)
                                       or not all(isinstance(i, str) for i in record_ids)):
            raise AppError("VALIDATION_ERROR", details={"record_ids": ["应为缴费记录编号列表"]})
        available = self._certifiable(payer_id, insurance_type, paid_from, paid_to)
        try:
            chosen = domain.select_records(available, record_ids)
        except domain.RuleViolation as violation:
            raise _rule_error(violation) from None
        latest = max(chosen, key=lambda r: r["paid_at"])
        payer = {"name": latest["payer_name"], "id_number": latest["id_number"]}
        now = self.clock.now()
        certificates = CertificateRepository(self.db)
        certificate = self._reserve(certificates, kind, payer_id, insurance_type, payer, chosen, now)
        doc = domain.certificate_document(kind, chosen, payer, certificate["_id"], certificate["certificate_no"],
                                          now, issuer_settings(self.config))
        try:
            pdf = self.renderer.render(doc)
        except Exception:
            certificates.discard(certificate["_id"])
            raise
        certificates.mark_issued(certificate["_id"], len(pdf))
        log.info("%s certificate issued for payer %s: %d record(s)", kind, pseudonym(payer_id), len(chosen))
        return {"code": certificate["_id"], "certificate_no": certificate["certificate_no"], "kind": kind,
                "record_count": len(chosen), "total": doc["total"],
                "filename": f"{domain.KINDS[kind]}-{certificate['certificate_no']}.pdf",
                "pdf_base64": base64.b64encode(pdf).decode("ascii")}

    @staticmethod
    def _reserve(certificates, kind, payer_id, insurance_type, payer, records, now):
        """Register the certificate before rendering, so a code and number are never handed out twice;
        verification only answers once it is ``issued``."""
        for _ in range(5):
            doc = {"_id": domain.new_verification_code(), "certificate_no": domain.new_certificate_no(now),
                   "status": CERTIFICATE_STATUS_RENDERING, "kind": kind, "payer_id": payer_id,
                   "payer_name": payer["name"], "insurance_type": insurance_type, "issued_at": now,
                   "total_fen": sum(r["amount_fen"] for r in records),
                   "records": [{"record_id": r["_id"], "period": r["period"], "amount_fen": r["amount_fen"],
                                "tax_ticket_no": r["tax_ticket_no"]} for r in records]}
            if certificates.insert(doc):
                return doc
        raise AppError("SERVICE_UNAVAILABLE", "证明编号生成失败，请稍后再试")

    @rpc()
    def verify(self, code):
        """Public check of a certificate by its verification code; NOT_FOUND for anything else."""
        normalised = domain.normalise_code(code)
        certificate = normalised and CertificateRepository(self.db).by_code(normalised)
        if not certificate or certificate.get("status") != CERTIFICATE_STATUS_ISSUED:
            raise AppError("NOT_FOUND", "未找到该证明，请核对验证码")
        return domain.verification_view(certificate)
