"""certs' collections: ``records`` (read model of paid plans), ``certificates`` (what was issued), plus the
processed-event ids (events that fail go to the broker's dlq.certs). Indexes are declared here only."""
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from servicekit.events import ProcessedEvents

from certs import domain


def ensure_indexes(db):
    # 缴费记录 by 费款所属期, and the certificate queries by payment time: both per payer and insurance type.
    db.records.create_index([("payer_id", ASCENDING), ("insurance_type", ASCENDING), ("period", ASCENDING)])
    db.records.create_index([("payer_id", ASCENDING), ("insurance_type", ASCENDING), ("paid_at", ASCENDING)])
    db.records.create_index("tax_ticket_no")
    db.certificates.create_index("certificate_no", unique=True)
    ProcessedEvents.ensure_indexes(db)


class RecordRepository:
    def __init__(self, db):
        self.records = db.records

    def upsert_from_order(self, paid, now) -> int:
        """One record per paid plan; a redelivered event (or the same order re-sent) inserts nothing twice.

        ``$setOnInsert`` keeps the first version of a record: a paid tax record is never rewritten by a later
        message. Returns how many records were new.
        """
        new = 0
        for line in paid["records"]:
            doc = {
                "payer_id": paid["payer"]["payer_id"],
                "payer_name": paid["payer"]["name"],
                "id_number": paid["payer"]["id_number"],
                "insurance_type": paid["insurance_type"],
                "region_code": paid.get("region_code"),
                "order_id": paid["order_id"],
                "payment_id": paid["payment_id"],
                "channel": paid["channel"],
                "channel_txn_id": paid["channel_txn_id"],
                "paid_at": paid["paid_at"],
                "plan_id": line["plan_id"],
                "period": line["period"],
                "amount_fen": line["amount_fen"],
                "tax_ticket_no": line["tax_ticket_no"],
                "source_event_id": paid["event_id"],
                "created_at": now,
            }
            result = self.records.update_one({"_id": domain.record_id(paid["order_id"], line["plan_id"])},
                                             {"$setOnInsert": doc}, upsert=True)
            new += 1 if result.upserted_id is not None else 0
        return new

    def by_period(self, payer_id, insurance_type, period_from, period_to):
        return list(self.records.find({"payer_id": payer_id, "insurance_type": insurance_type,
                                       "period": {"$gte": period_from, "$lte": period_to}}))

    def by_paid_at(self, payer_id, insurance_type, start, end):
        return list(self.records.find({"payer_id": payer_id, "insurance_type": insurance_type,
                                       "paid_at": {"$gte": start, "$lt": end}}))


class CertificateRepository:
    def __init__(self, db):
        self.certificates = db.certificates

    def insert(self, doc) -> bool:
        """False when the code or number collided (astronomically rare for the code): the caller draws again."""
        try:
            self.certificates.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False

    def mark_issued(self, code, pdf_bytes):
        self.certificates.update_one({"_id": code, "status": "rendering"},
                                     {"$set": {"status": "issued", "pdf_bytes": pdf_bytes}})

    def discard(self, code):
        """A reservation whose PDF failed: never verifiable."""
        self.certificates.delete_one({"_id": code, "status": "rendering"})

    def by_code(self, code):
        return self.certificates.find_one({"_id": code})
