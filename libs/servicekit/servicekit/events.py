"""Events as a public interface, published through a transactional outbox.

Every event carries ``event_id``, ``occurred_at`` and ``schema_version`` next to its own fields. A service writes
the outbox entry in the same transaction (or document write) as the state change; ``relay_outbox`` publishes
pending entries through Nameko's EventDispatcher (persistent messages, publisher confirms) and only then marks
them sent. A crash between the two re-publishes later, so consumers must be idempotent on ``event_id``
(``ProcessedEvents``).
"""
import logging
import uuid
from datetime import timedelta

from marshmallow import EXCLUDE, Schema, fields
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

log = logging.getLogger(__name__)

PENDING, SENT = "pending", "sent"
CLAIM_LEASE = timedelta(seconds=30)


class EventEnvelope(Schema):
    """The fields every event carries; each service's ``schemas.py`` derives its events from it. Readers ignore
    fields they do not know (a producer may add fields within a version, never rename or drop them)."""

    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True)
    occurred_at = fields.String(required=True, metadata={"description": "ISO 8601 with offset"})
    schema_version = fields.Integer(required=True)


def make_event(payload: dict, now, schema_version=1) -> dict:
    return {
        "event_id": uuid.uuid4().hex,
        "occurred_at": now.isoformat(),
        "schema_version": schema_version,
        **payload,
    }


class Outbox:
    """The ``outbox`` collection of one service's database."""

    def __init__(self, db):
        self.collection = db["outbox"]

    @staticmethod
    def ensure_indexes(db):
        db["outbox"].create_index([("status", ASCENDING), ("created_at", ASCENDING)])

    def add(self, event_type, payload, now, session=None, schema_version=1):
        event = make_event(payload, now, schema_version)
        self.collection.insert_one(
            {"_id": event["event_id"], "event_type": event_type, "event": event,
             "status": PENDING, "created_at": now, "claimed_at": None},
            session=session,
        )
        return event

    def claim_pending(self, now, limit=100):
        """Entries this relay may publish now; a claim older than the lease is taken over (crashed relay)."""
        candidates = self.collection.find(
            {"status": PENDING, "$or": [{"claimed_at": None}, {"claimed_at": {"$lt": now - CLAIM_LEASE}}]},
            sort=[("created_at", ASCENDING)], limit=limit,
        )
        for entry in list(candidates):
            claimed = self.collection.update_one(
                {"_id": entry["_id"], "status": PENDING, "claimed_at": entry["claimed_at"]},
                {"$set": {"claimed_at": now}},
            )
            if claimed.modified_count:
                yield entry

    def mark_sent(self, entry_id, now):
        self.collection.update_one({"_id": entry_id}, {"$set": {"status": SENT, "sent_at": now}})

    def backlog(self):
        return self.collection.count_documents({"status": PENDING})


def relay_outbox(outbox: Outbox, dispatch, now, limit=100) -> int:
    """Publish pending events in creation order; returns how many were sent."""
    sent = 0
    for entry in outbox.claim_pending(now, limit):
        try:
            dispatch(entry["event_type"], entry["event"])
        except Exception:
            log.exception("outbox publish failed for %s; will retry", entry["event_type"])
            break
        outbox.mark_sent(entry["_id"], now)
        sent += 1
    return sent


class ProcessedEvents:
    """Consumer-side idempotency: one record per handled event id (unique index)."""

    def __init__(self, db, consumer):
        self.collection = db["processed_events"]
        self.consumer = consumer

    @staticmethod
    def ensure_indexes(db):
        db["processed_events"].create_index([("consumer", ASCENDING), ("event_id", ASCENDING)], unique=True)

    def already_processed(self, event_id) -> bool:
        return self.collection.count_documents({"consumer": self.consumer, "event_id": event_id}, limit=1) > 0

    def record(self, event_id, now, session=None) -> bool:
        """False when another worker recorded it first."""
        try:
            self.collection.insert_one({"consumer": self.consumer, "event_id": event_id, "at": now}, session=session)
            return True
        except DuplicateKeyError:
            return False
