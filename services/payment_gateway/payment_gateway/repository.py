"""payment_gateway's collections: payments, channel_txns, notifications, mismatches, outbox, processed_events.

``channel_txns`` holds one document per (channel, channel transaction id) under its ``_id``: that unique key is
what makes a channel transaction count once, whatever index features the database offers.
"""
import uuid

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from servicekit.events import Outbox, ProcessedEvents

from payment_gateway import domain


def ensure_indexes(db):
    db.payments.create_index([("status", ASCENDING), ("next_query_at", ASCENDING)])  # the status-query sweep
    db.payments.create_index([("payer_id", ASCENDING), ("dated_at", DESCENDING)])  # 第三方支付情况
    db.payments.create_index("order_id")
    db.payments.create_index([("channel", ASCENDING), ("settle_date", ASCENDING)])  # reconciliation
    db.notifications.create_index([("payment_id", ASCENDING), ("received_at", ASCENDING)])
    db.mismatches.create_index([("payment_id", ASCENDING), ("kind", ASCENDING)])
    # reconciliation: successes no file has listed yet (CHANNEL_MISSING), open payments of a day, plan duplicates
    db.payments.create_index([("channel", ASCENDING), ("statement_date", ASCENDING), ("settle_date", ASCENDING)])
    db.payments.create_index([("channel", ASCENDING), ("status", ASCENDING), ("created_at", ASCENDING)])
    db.payments.create_index([("plan_ids", ASCENDING), ("status", ASCENDING)])
    db.reconciliations.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
    db.reconciliations.create_index([("channel", ASCENDING), ("date", ASCENDING), ("status", ASCENDING)])
    db.reconciliation_items.create_index([("run_id", ASCENDING), ("seq", ASCENDING)])
    db.reconciliation_items.create_index([("run_id", ASCENDING), ("category", ASCENDING)])
    Outbox.ensure_indexes(db)
    ProcessedEvents.ensure_indexes(db)


class PaymentRepository:
    def __init__(self, db):
        self.db = db
        self.payments = db.payments

    def insert(self, order, payer_id, channel, now, first_query_at):
        doc = {"_id": uuid.uuid4().hex, "order_id": order["order_id"], "payer_id": payer_id, "channel": channel,
               "amount_fen": order["amount_fen"], "insurance_type": order["insurance_type"],
               "status": domain.CREATING, "created_at": now, "dated_at": now, "updated_at": now,
               "next_query_at": first_query_at, "query_attempts": 0, "channel_txn_id": None, "paid_at": None,
               "settle_date": None, "pay_url": None, "plan_ids": list(order.get("plan_ids") or []),
               "statement_date": None}
        self.payments.insert_one(doc)
        return doc

    def get(self, payment_id, session=None):
        return self.payments.find_one({"_id": payment_id}, session=session) if isinstance(payment_id, str) else None

    def open_for_order(self, order_id):
        return self.payments.find_one({"order_id": order_id, "status": {"$in": list(domain.OPEN)}})

    def set_fields(self, payment_id, fields, expect_status=None):
        query = {"_id": payment_id}
        if expect_status:
            query["status"] = expect_status
        return self.payments.update_one(query, {"$set": fields}).modified_count == 1

    def move(self, payment_id, sources, target, now, session=None, extra=None):
        result = self.payments.update_one({"_id": payment_id, "status": {"$in": list(sources)}},
                                          {"$set": {"status": target, "updated_at": now, **(extra or {})}},
                                          session=session)
        return result.modified_count == 1

    def claim_txn(self, channel, txn_id, payment_id, now, session):
        """False when this channel transaction is already recorded (for this or another payment)."""
        try:
            self.db.channel_txns.insert_one({"_id": f"{channel}:{txn_id}", "channel": channel, "txn_id": txn_id,
                                             "payment_id": payment_id, "at": now}, session=session)
            return True
        except DuplicateKeyError:
            return False

    def txn_owner(self, channel, txn_id):
        doc = self.db.channel_txns.find_one({"_id": f"{channel}:{txn_id}"})
        return doc and doc["payment_id"]

    def due_for_query(self, now, limit=20):
        return list(self.payments.find({"status": {"$in": list(domain.OPEN)}, "next_query_at": {"$lte": now}},
                                       limit=limit).sort("next_query_at", ASCENDING))

    def claim_query(self, payment, now, lease_seconds=30):
        """One instance queries a due payment at a time: move its next_query_at out by a lease."""
        from datetime import timedelta

        result = self.payments.update_one(
            {"_id": payment["_id"], "next_query_at": payment["next_query_at"]},
            {"$set": {"next_query_at": now + timedelta(seconds=lease_seconds)}})
        return result.modified_count == 1

    def for_payer_between(self, payer_id, start, end, limit=500):
        return list(self.payments.find(
            {"payer_id": payer_id, "dated_at": {"$gte": start, "$lt": end},
             "status": {"$in": [domain.SUCCEEDED, domain.FAILED, domain.PROCESSING, domain.UNKNOWN,
                                domain.MISMATCH]}}, limit=limit).sort("dated_at", DESCENDING))

    # ---- what the channel told us, kept before we answer it -----------------------------------------
    def store_notification(self, channel, fields, verdict, now, payment_id=None):
        self.db.notifications.insert_one({"channel": channel, "payment_id": payment_id, "fields": fields,
                                          "verdict": verdict, "received_at": now})

    def record_mismatch(self, kind, payment_id, channel, channel_txn_id, local_amount_fen, channel_amount_fen, now):
        self.db.mismatches.update_one(
            {"payment_id": payment_id, "kind": kind, "channel_txn_id": channel_txn_id},
            {"$setOnInsert": {"channel": channel, "local_amount_fen": local_amount_fen,
                              "channel_amount_fen": channel_amount_fen, "at": now, "resolution": "flagged"}},
            upsert=True)

    def mismatches_for(self, payment_id):
        return list(self.db.mismatches.find({"payment_id": payment_id}, {"_id": 0}))
