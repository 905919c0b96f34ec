"""plans' collections and every query on them; indexes are declared here only.

- ``plans``: one document per bureau plan (``_id`` = the bureau's plan id), payment state next to the bureau's
  latest view of it (``bureau_view``), ``rev`` incremented on every change so read-then-write is guarded.
- ``enrollments``: synced 参保登记 (``_id`` = bureau|id_number|insurance_type).
- ``sync_state``: per bureau: cursor, lease, freshness, failures and back-off.
- ``declarations`` and ``declaration_slots`` (one per declared period: a unique key that makes two concurrent
  declarations of the same period impossible).
- ``outbox``, ``processed_events`` (order events that keep failing go to the broker's ``dlq.plans``).
"""
from datetime import timedelta

from pymongo import ASCENDING, InsertOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from servicekit.events import Outbox, ProcessedEvents

from plans import domain


def ensure_indexes(db):
    db.plans.create_index([("id_number", ASCENDING), ("insurance_type", ASCENDING), ("status", ASCENDING),
                           ("period", ASCENDING)])
    db.plans.create_index("declaration_id", sparse=True)
    db.enrollments.create_index("id_number")
    db.declarations.create_index([("id_number", ASCENDING), ("insurance_type", ASCENDING)])
    Outbox.ensure_indexes(db)
    ProcessedEvents.ensure_indexes(db)


class GuardMissed(Exception):
    """A guarded write found the document changed since it was read: re-read and try again."""


def _bump(fields, now):
    return {"$set": {**fields, "updated_at": now}, "$inc": {"rev": 1}}


class PlanRepository:
    def __init__(self, db):
        self.db, self.plans = db, db.plans

    def by_ids(self, ids, session=None):
        return {doc["_id"]: doc for doc in self.plans.find({"_id": {"$in": list(ids)}}, session=session)}

    def get(self, plan_id):
        return self.plans.find_one({"_id": plan_id})

    def open_plans(self, id_number, insurance_type):
        return list(self.plans.find({"id_number": id_number, "insurance_type": insurance_type,
                                     "status": {"$in": list(domain.OPEN)}}).sort("period", ASCENDING))

    def any_plan(self, id_number, insurance_type):
        return self.plans.find_one({"id_number": id_number, "insurance_type": insurance_type},
                                   projection={"_id": 1}) is not None

    def by_declaration(self, declaration_id, session=None):
        return list(self.plans.find({"declaration_id": declaration_id}, session=session))

    def apply_decisions(self, decisions, existing, session):
        """One bulk write for a page of decisions; every update is guarded on the ``rev`` that was read."""
        ops = []
        for decision in decisions:
            if decision.action == "insert":
                ops.append(InsertOne(decision.set))
            elif decision.set is not None:
                current = existing[decision.plan_id]
                ops.append(UpdateOne({"_id": current["_id"], "rev": current["rev"]},
                                     {"$set": decision.set, "$inc": {"rev": 1}}))
        if not ops:
            return 0
        try:
            result = self.plans.bulk_write(ops, ordered=False, session=session)
        except (BulkWriteError, DuplicateKeyError) as exc:
            raise GuardMissed(str(exc)) from None
        updates = sum(1 for op in ops if isinstance(op, UpdateOne))
        if result.matched_count != updates:
            raise GuardMissed(f"{updates - result.matched_count} plans changed during the sync")
        return len(ops)

    # ---- payment state (driven by orders) -------------------------------------------------------
    def lock(self, plan_id, id_number, insurance_type, order_id, now):
        result = self.plans.update_one(
            {"_id": plan_id, "id_number": id_number, "insurance_type": insurance_type, "status": domain.UNPAID},
            _bump({"status": domain.LOCKED, "order_id": order_id, "locked_at": now}, now))
        return result.modified_count == 1

    def unlock(self, plan_ids, order_id, now):
        """Undo locks this call took (lock_plans' all-or-nothing); bureau changes made meanwhile stay pending."""
        for plan_id in plan_ids:
            self.release_one(plan_id, order_id, now)

    def release_one(self, plan_id, order_id, now, attempts=5):
        """Locked by ``order_id`` -> unpaid with the bureau's latest view (or withdrawn). False if not locked by it."""
        for _ in range(attempts):
            plan = self.plans.find_one({"_id": plan_id})
            if not plan or plan["status"] != domain.LOCKED or plan.get("order_id") != order_id:
                return False
            result = self.plans.update_one({"_id": plan_id, "rev": plan["rev"], "status": domain.LOCKED,
                                            "order_id": order_id},
                                           {"$set": domain.on_release(plan, now), "$inc": {"rev": 1}})
            if result.modified_count:
                return True
        raise GuardMissed(f"plan kept changing while releasing it from order {order_id}")

    def mark_paid(self, plan_id, order_id, paid_at, tax_ticket_no, session=None):
        result = self.plans.update_one(
            {"_id": plan_id, "status": {"$ne": domain.PAID}},
            {"$set": {"status": domain.PAID, "order_id": order_id, "paid_at": paid_at,
                      "tax_ticket_no": tax_ticket_no, "updated_at": paid_at}, "$inc": {"rev": 1}},
            session=session)
        return result.modified_count == 1

    def withdraw_declaration_plans(self, declaration_id, now, session):
        return self.plans.update_many({"declaration_id": declaration_id, "status": domain.UNPAID},
                                      _bump({"status": domain.WITHDRAWN, "withdrawn_at": now,
                                             "withdrawn_by": "void"}, now), session=session).modified_count

    def restore_declaration_plans(self, declaration_id, now):
        self.plans.update_many({"declaration_id": declaration_id, "status": domain.WITHDRAWN,
                                "withdrawn_by": "void"},
                               {"$set": {"status": domain.UNPAID, "updated_at": now},
                                "$unset": {"withdrawn_by": "", "withdrawn_at": ""}, "$inc": {"rev": 1}})


class EnrollmentRepository:
    def __init__(self, db):
        self.enrollments = db.enrollments

    @staticmethod
    def key(bureau, id_number, insurance_type):
        return f"{bureau}|{id_number}|{insurance_type}"

    def by_ids(self, ids, session=None):
        return {doc["_id"]: doc for doc in self.enrollments.find({"_id": {"$in": list(ids)}}, session=session)}

    def upsert_many(self, docs, session):
        if not docs:
            return 0
        ops = [UpdateOne({"_id": d["_id"]}, {"$set": d}, upsert=True) for d in docs]
        self.enrollments.bulk_write(ops, ordered=False, session=session)
        return len(ops)

    def of(self, id_number, bureau=None):
        query = {"id_number": id_number}
        docs = list(self.enrollments.find(query).sort("insurance_type", ASCENDING))
        return [d for d in docs if bureau is None or d["bureau"] == bureau]


class SyncStateRepository:
    """Cursor, lease (one sync per bureau at a time, across instances), freshness and back-off."""

    def __init__(self, db):
        self.state = db.sync_state

    def get(self, bureau):
        return self.state.find_one({"_id": bureau}) or {"_id": bureau, "cursor": None}

    def all(self):
        return {doc["_id"]: doc for doc in self.state.find({})}

    def acquire(self, bureau, owner, now, lease):
        """Take the bureau's sync lease when free or expired; the upsert's unique _id refuses a held lease."""
        try:
            self.state.update_one({"_id": bureau, "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]},
                                  {"$set": {"lease_owner": owner, "lease_until": now + lease},
                                   "$setOnInsert": {"cursor": None, "failures": 0, "first_attempt_at": now}},
                                  upsert=True)
            return True
        except DuplicateKeyError:
            return False

    def release(self, bureau, owner):
        self.state.update_one({"_id": bureau, "lease_owner": owner}, {"$set": {"lease_until": None}})

    def extend(self, bureau, owner, now, lease):
        return self.state.update_one({"_id": bureau, "lease_owner": owner},
                                     {"$set": {"lease_until": now + lease}}).modified_count == 1

    def advance(self, bureau, owner, cursor, now, session):
        result = self.state.update_one({"_id": bureau, "lease_owner": owner},
                                       {"$set": {"cursor": cursor, "last_page_at": now}}, session=session)
        if result.matched_count != 1:
            raise GuardMissed("lost the sync lease")

    def succeeded(self, bureau, now):
        self.state.update_one({"_id": bureau}, {"$set": {"last_success_at": now, "last_attempt_at": now,
                                                         "failures": 0, "next_attempt_at": None,
                                                         "last_error": None}})

    def failed(self, bureau, now, error, backoff):
        doc = self.state.find_one({"_id": bureau}) or {}
        failures = int(doc.get("failures") or 0) + 1
        self.state.update_one({"_id": bureau}, {"$set": {
            "failures": failures, "last_attempt_at": now, "last_error": error,
            "next_attempt_at": now + backoff(failures)}})
        return failures


class DeclarationRepository:
    def __init__(self, db):
        self.declarations, self.slots = db.declarations, db.declaration_slots

    def get(self, declaration_id):
        return self.declarations.find_one({"_id": declaration_id})

    def for_payer(self, id_number, insurance_type, limit=100):
        """Newest first; what the payer can void is among them (申报作废 lists them)."""
        return list(self.declarations.find({"id_number": id_number, "insurance_type": insurance_type})
                    .sort("created_at", -1).limit(limit))

    def declared_periods(self, id_number, insurance_type):
        return {doc["_id"].rsplit("|", 1)[1]
                for doc in self.slots.find({"_id": {"$regex": f"^{id_number}\\|{insurance_type}\\|"}})}

    def create(self, doc, session):
        """The declaration and one slot per period; a period already declared raises DuplicateKeyError."""
        self.declarations.insert_one(doc, session=session)
        self.slots.insert_many([{"_id": f"{doc['id_number']}|{doc['insurance_type']}|{p}",
                                 "declaration_id": doc["_id"]} for p in doc["periods"]], session=session)

    def set_status(self, declaration_id, expected, status, now, session=None, **fields):
        result = self.declarations.update_one({"_id": declaration_id, "status": expected},
                                              {"$set": {"status": status, "updated_at": now, **fields}},
                                              session=session)
        return result.modified_count == 1

    def free_slots(self, declaration_id, doc, session=None):
        self.slots.delete_many({"_id": {"$in": [f"{doc['id_number']}|{doc['insurance_type']}|{p}"
                                                for p in doc["periods"]]},
                                "declaration_id": declaration_id}, session=session)


def backoff(base_seconds, max_seconds):
    def delay(failures):
        return timedelta(seconds=min(max_seconds, base_seconds * 2 ** (failures - 1)))
    return delay
