"""orders' collections: orders, tax_ticket_numbers, counters, outbox, processed_events. Indexes declared here only.

Every state change is a guarded update: ``update_one({"_id": id, "status": {"$in": allowed}}, ...)``, so two
workers (or two instances) racing on one order cannot both move it.
"""
import uuid

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from servicekit.events import Outbox, ProcessedEvents

from orders import domain


def ensure_indexes(db):
    db.orders.create_index([("status", ASCENDING), ("expires_at", ASCENDING)])  # the expiry sweep
    db.orders.create_index([("payer_id", ASCENDING), ("created_at", DESCENDING)])
    db.orders.create_index("payment_id")
    # One 电子税票号码 per plan record, ever: a second paid order for the same plan cannot commit.
    db.tax_ticket_numbers.create_index("plan_id", unique=True)
    Outbox.ensure_indexes(db)
    ProcessedEvents.ensure_indexes(db)


class OrderRepository:
    def __init__(self, db):
        self.db = db
        self.orders = db.orders

    def new_id(self):
        return uuid.uuid4().hex

    def insert(self, order_id, principal, region_code, plans, now, ttl):
        doc = {
            "_id": order_id, "payer_id": principal["payer_id"], "id_number": principal["id_number"],
            "name": principal["name"], "insurance_type": principal["insurance_type"], "region_code": region_code,
            "plan_ids": [p["plan_id"] for p in plans],
            "records": [{"plan_id": p["plan_id"], "period": p["period"], "amount_fen": int(p["amount_fen"]),
                         "deadline": p.get("deadline")} for p in plans],
            "amount_fen": sum(int(p["amount_fen"]) for p in plans),
            "status": domain.PENDING, "locked": False, "created_at": now, "updated_at": now,
            "expires_at": domain.expires_at(now, ttl), "payment_id": None, "channel": None,
        }
        self.orders.insert_one(doc)
        return doc

    def get(self, order_id, session=None):
        return self.orders.find_one({"_id": order_id}, session=session)

    def for_payer(self, order_id, payer_id):
        return self.orders.find_one({"_id": order_id, "payer_id": payer_id})

    def mark_locked(self, order_id, now):
        self.orders.update_one({"_id": order_id}, {"$set": {"locked": True, "updated_at": now}})

    def discard_unlocked(self, order_id):
        """An order whose plans were refused never existed for the payer."""
        self.orders.delete_one({"_id": order_id, "status": domain.PENDING, "locked": False})

    def start_payment(self, order_id, payer_id, payment_id, channel, now):
        result = self.orders.update_one(
            {"_id": order_id, "payer_id": payer_id, "status": domain.PENDING, "locked": True,
             "expires_at": {"$gt": now}},
            {"$set": {"status": domain.PAYING, "payment_id": payment_id, "channel": channel, "updated_at": now}})
        return result.modified_count == 1

    def adopt_payment(self, order_id, payment_id, channel, now):
        """pending → paying for a payment the channel has already confirmed, when start_payment's own write
        never landed (it was overtaken, or lost with a database that crashed); guarded like start_payment."""
        result = self.orders.update_one(
            {"_id": order_id, "status": domain.PENDING, "payment_id": None, "locked": True},
            {"$set": {"status": domain.PAYING, "payment_id": payment_id, "channel": channel, "updated_at": now,
                      "adopted_payment": True}})
        return result.modified_count == 1

    def move(self, order_id, target, now, session=None, payment_id=None, extra=None):
        """Guarded transition; True when this call made it."""
        query = {"_id": order_id, "status": {"$in": domain.sources_for(target)}}
        if payment_id is not None:
            query["payment_id"] = payment_id
        result = self.orders.update_one(query, {"$set": {"status": target, "updated_at": now, **(extra or {})}},
                                        session=session)
        return result.modified_count == 1

    def count_open_by_state(self):
        """Orders not yet settled, per state (the status prefix of the expiry index counts them)."""
        return {state: self.orders.count_documents({"status": state})
                for state in (domain.PENDING, domain.PAYING, domain.UNKNOWN)}

    def due_for_expiry(self, now, limit=100):
        return list(self.orders.find({"status": domain.PENDING, "expires_at": {"$lte": now}},
                                     {"_id": 1, "plan_ids": 1}, limit=limit))

    def next_ticket_sequences(self, day_key, count):
        """Reserve ``count`` consecutive sequence numbers of the day (outside any transaction: a reserved but
        unused block is a gap in the numbering, never a duplicate)."""
        doc = self.db.counters.find_one_and_update({"_id": f"tax_ticket:{day_key}"}, {"$inc": {"seq": count}},
                                                   upsert=True, return_document=ReturnDocument.AFTER)
        return range(doc["seq"] - count + 1, doc["seq"] + 1)

    def record_tickets(self, order_id, records, session):
        try:
            self.db.tax_ticket_numbers.insert_many(
                [{"_id": r["tax_ticket_no"], "plan_id": r["plan_id"], "order_id": order_id} for r in records],
                session=session)
        except DuplicateKeyError:
            raise PlanAlreadyPaid(order_id) from None


class PlanAlreadyPaid(Exception):
    """A plan of this order already has a tax ticket from another order: a duplicate payment for ops."""
