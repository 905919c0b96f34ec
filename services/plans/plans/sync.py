"""Syncing one bureau's feed into the plans database (no Nameko here: the service and the benchmark drive it).

Per page: one read of the plans and enrolments it touches, one bulk write of plans, one of enrolments, one
insert of the outbox events and the cursor move, all in one transaction. So a crash never leaves the cursor
ahead of the data or an applied change without its event, and a re-sync of the same data writes nothing.
"""
import logging
import uuid
from datetime import timedelta

from servicekit.events import Outbox

from plans import domain
from plans.repository import EnrollmentRepository, GuardMissed, PlanRepository, SyncStateRepository

log = logging.getLogger(__name__)
PAGE_SIZE = 1000
LEASE = timedelta(seconds=120)
PAGE_ATTEMPTS = 5


class SyncBusy(Exception):
    """Another worker holds the bureau's sync lease."""


def apply_plan_changes(db, bureau, changes, now, session):
    """Decide and write a batch of plan changes (the last change of a plan id in the batch wins)."""
    latest = {}
    for change in changes:
        latest[change["plan_id"]] = change
    plans = PlanRepository(db)
    existing = plans.by_ids(latest, session=session)
    decisions, events = [], []
    for plan_id, change in latest.items():
        current = existing.get(plan_id)
        if change.get("withdrawn") and current is not None:
            # A withdrawal names only the plan: the rest is what the bureau sent last.
            change = {**current["bureau_view"], "plan_id": plan_id, "id_number": current["id_number"],
                      "insurance_type": current["insurance_type"], "withdrawn": True,
                      "declaration_id": current.get("declaration_id")}
            change.pop("digest", None)
        decision = domain.decide(current, change, bureau, now)
        if decision.action == "ignore" and current is not None:
            log.warning("%s bureau sent plan %s for another payer or bureau; ignored", bureau, plan_id)
        decision.plan_id = plan_id
        decisions.append(decision)
        events.extend(decision.events)
    written = plans.apply_decisions(decisions, existing, session)
    outbox = Outbox(db)
    if events:
        outbox.collection.insert_many([_outbox_entry(event_type, payload, now) for event_type, payload in events],
                                      session=session)
    return written, len(events)


def _outbox_entry(event_type, payload, now):
    from servicekit.events import PENDING, make_event

    event = make_event({**payload, "deadline": _iso(payload.get("deadline"))} if "deadline" in payload
                       else payload, now)
    return {"_id": event["event_id"], "event_type": event_type, "event": event, "status": PENDING,
            "created_at": now, "claimed_at": None}


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def apply_enrollments(db, bureau, items, now, session):
    repo = EnrollmentRepository(db)
    docs = {}
    for item in items:
        key = repo.key(bureau, item["id_number"], item["insurance_type"])
        docs[key] = {"_id": key, "bureau": bureau, **item}
    existing = repo.by_ids(docs, session=session)
    changed = [{**doc, "synced_at": now} for key, doc in docs.items()
               if key not in existing or any(existing[key].get(k) != v for k, v in doc.items())]
    return repo.upsert_many(changed, session)


class BureauSync:
    """Runs one sync of one bureau: pages until the feed has no more, under the bureau's lease."""

    def __init__(self, db, bureau_code, client, clock, page_size=PAGE_SIZE):
        self.db, self.bureau, self.client, self.clock = db, bureau_code, client, clock
        self.page_size = page_size
        self.state = SyncStateRepository(db)
        self.owner = uuid.uuid4().hex

    def run(self):
        """Returns counts; raises BureauUnavailable (nothing of the failed page applied) or SyncBusy."""
        if not self.state.acquire(self.bureau, self.owner, self.clock.now(), LEASE):
            raise SyncBusy(self.bureau)
        totals = {"pages": 0, "changes": 0, "written": 0, "events": 0}
        try:
            cursor = self.state.get(self.bureau).get("cursor")
            while True:
                changes, next_cursor, has_more = self.client.feed(cursor, self.page_size)
                written, events = self._apply_page(changes, next_cursor)
                totals["pages"] += 1
                totals["changes"] += len(changes)
                totals["written"] += written
                totals["events"] += events
                cursor = next_cursor
                if not has_more or not changes:
                    break
                self.state.extend(self.bureau, self.owner, self.clock.now(), LEASE)
            self.state.succeeded(self.bureau, self.clock.now())
            return totals
        finally:
            self.state.release(self.bureau, self.owner)

    def _apply_page(self, changes, next_cursor):
        plan_changes = [item for kind, item in changes if kind == "plan"]
        enrollments = [item for kind, item in changes if kind == "enrollment"]
        for attempt in range(1, PAGE_ATTEMPTS + 1):
            now = self.clock.now()
            try:
                with self.db.client.start_session() as session, session.start_transaction():
                    written, events = apply_plan_changes(self.db, self.bureau, plan_changes, now, session) \
                        if plan_changes else (0, 0)
                    written += apply_enrollments(self.db, self.bureau, enrollments, now, session)
                    self.state.advance(self.bureau, self.owner, next_cursor, now, session)
                return written, events
            except GuardMissed as exc:
                # An order locked or paid a plan between our read and write: read again and re-decide.
                log.info("%s sync page retry %d: %s", self.bureau, attempt, exc)
        raise GuardMissed(f"{self.bureau} sync page kept conflicting")
