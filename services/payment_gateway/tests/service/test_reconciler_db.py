"""The run engine against the real (embedded or MongoDB 7) database: the service's own paths for paid/failed,
re-runs that change nothing, the carry-over across dates, a bad file that changes nothing, a crash and resume."""
import uuid
from datetime import date, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory
from pymongo import MongoClient

from payment_gateway import reconciler
from payment_gateway.repository import ensure_indexes
from payment_gateway.service import PaymentGatewayService
from servicekit.clock import SHANGHAI, FakeClock

DAY = date(2026, 3, 11)
MER = "898230100000001"
AT = datetime(2026, 3, 11, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
def db(mongo_uri):
    client = MongoClient(mongo_uri, tz_aware=True)
    database = client[f"t{uuid.uuid4().hex[:8]}_payment_gateway"]
    ensure_indexes(database)
    yield database
    client.drop_database(database.name)


def statement(day, details):
    """details: (queryId, orderId, amount_fen, respCode)"""
    lines = [f"H|UPSTMT|1.0|UTF-8|{MER}|税务局|{day:%Y%m%d}|{day:%Y%m%d}235959"]
    lines += [f"D|{q}|{o}|01|{day:%Y%m%d}101500|{a}|{a if c == '00' else 0}|{c}|{day:%Y%m%d}"
              for q, o, a, c in details]
    ok = [d for d in details if d[3] == "00"]
    lines.append(f"T|{len(details)}|{len(ok)}|{sum(d[2] for d in ok)}|EOF")
    return "".join(line + "\n" for line in lines).encode("utf-8")


class FileAdapter:
    merchant_id = MER

    def __init__(self):
        self.files = {}

    def fetch_statement(self, day, destination):
        with open(destination, "wb") as out:
            out.write(self.files[day])


def payment(db, pid, status, txn=None, settle=DAY, plan="plan", amount=35000):
    db.payments.insert_one({
        "_id": pid, "order_id": f"O-{pid}", "payer_id": "payer", "channel": "unionpay", "amount_fen": amount,
        "status": status, "created_at": AT, "dated_at": AT, "updated_at": AT, "next_query_at": AT + timedelta(days=9),
        "query_attempts": 6, "channel_txn_id": txn, "paid_at": AT if status == "succeeded" else None,
        "settle_date": settle.isoformat() if status == "succeeded" else None, "statement_date": None,
        "plan_ids": [f"{plan}-{pid}"]})


def service(db, now):
    svc = worker_factory(PaymentGatewayService, db=db)
    svc.clock = FakeClock(now)
    return svc


def run(db, adapter, day, now, chunk=200, fail_at=None):
    svc = service(db, now)
    if fail_at is not None:
        real = svc._succeed
        calls = {"n": 0}

        def dying(*args):
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise RuntimeError("the process dies here")
            return real(*args)

        svc._succeed = dying
    run_id = reconciler.start_run(db, "unionpay", day, now)
    engine = reconciler.Reconciler(db, svc, adapter, now, chunk=chunk)
    engine.run(reconciler.claim_next(db))
    return run_id


def listed(db, run_id):
    return {(i["payment_id"], i["category"], i["resolution"])
            for i in db.reconciliation_items.find({"run_id": run_id})}


def events(db, event_type):
    return [e["event"] for e in db.outbox.find({"event_type": event_type})]


def test_a_day_then_a_re_run_that_changes_nothing_more(db):
    adapter = FileAdapter()
    payment(db, "OK", "succeeded", txn="Q-OK")
    payment(db, "LIMBO", "unknown")
    payment(db, "GONE", "unknown")
    payment(db, "LATE", "succeeded", txn="Q-LATE")          # ours paid, not in today's file: midnight timing
    adapter.files[DAY] = statement(DAY, [("Q-OK", "OK", 35000, "00"), ("Q-LIMBO", "LIMBO", 35000, "00"),
                                         ("", "GONE", 35000, "01"), ("Q-X", "STRANGER", 100, "00")])
    now = AT + timedelta(days=1)
    first = run(db, adapter, DAY, now)
    assert listed(db, first) == {("LIMBO", "LOCAL_NOT_SUCCESS", "marked_paid"),
                                 ("GONE", "SETTLED_FAILED", "marked_failed"),
                                 ("STRANGER", "LOCAL_MISSING", "flagged_refund"),
                                 ("LATE", "CHANNEL_MISSING", "carried_over")}
    report = reconciler.report(db, first)
    assert report["status"] == "completed" and report["counts"]["matched"] == 1
    # the normal paths ran: the payment's own events, which orders turns into paid / failed orders
    assert [e["payment_id"] for e in events(db, "payment.succeeded")] == ["LIMBO"]
    assert events(db, "payment.succeeded")[0]["source"] == "reconciliation"
    assert [e["payment_id"] for e in events(db, "payment.failed")] == ["GONE"]
    assert db.payments.find_one({"_id": "LIMBO"})["status"] == "succeeded"
    assert db.payments.find_one({"_id": "GONE"})["status"] == "failed"
    mismatch_events = len(events(db, "reconciliation.mismatch"))
    assert mismatch_events == 3  # carried over is not (yet) a mismatch for ops

    second = run(db, adapter, DAY, now + timedelta(hours=1))
    assert listed(db, second) == {("STRANGER", "LOCAL_MISSING", "flagged_refund"),
                                  ("LATE", "CHANNEL_MISSING", "carried_over")}
    assert reconciler.report(db, second)["counts"]["matched"] == 3  # OK, LIMBO now paid, GONE now failed
    assert len(events(db, "payment.succeeded")) == 1 and len(events(db, "payment.failed")) == 1
    assert len(events(db, "reconciliation.mismatch")) == mismatch_events
    assert len(events(db, "reconciliation.completed")) == 2


def test_a_missing_success_is_carried_over_then_matched_or_flagged(db):
    adapter = FileAdapter()
    payment(db, "NEXT", "succeeded", txn="Q-N")   # appears in the next day's file
    payment(db, "NEVER", "succeeded", txn="Q-V")  # no file ever lists it
    for offset in range(4):
        day = DAY + timedelta(days=offset)
        adapter.files[day] = statement(day, [("Q-N", "NEXT", 35000, "00")] if offset == 1 else [])
    runs = [run(db, adapter, DAY + timedelta(days=d), AT + timedelta(days=d + 1)) for d in range(4)]
    resolutions = [{p: r for p, c, r in listed(db, run_id) if c == "CHANNEL_MISSING"} for run_id in runs]
    assert resolutions == [{"NEXT": "carried_over", "NEVER": "carried_over"}, {"NEVER": "carried_over"},
                           {"NEVER": "carried_over"}, {"NEVER": "flagged"}]
    flagged = [e for e in events(db, "reconciliation.mismatch") if e["category"] == "CHANNEL_MISSING"]
    assert [e["payment_id"] for e in flagged] == ["NEVER"]


def test_an_open_payment_absent_from_its_day_and_the_next_is_failed(db):
    adapter = FileAdapter()
    payment(db, "ABANDONED", "unknown")
    adapter.files[DAY] = statement(DAY, [])
    adapter.files[DAY + timedelta(days=1)] = statement(DAY + timedelta(days=1), [])
    first = run(db, adapter, DAY, AT + timedelta(days=1))
    assert listed(db, first) == set() and reconciler.report(db, first)["counts"]["unsettled"] == 1
    assert db.payments.find_one({"_id": "ABANDONED"})["status"] == "unknown"
    second = run(db, adapter, DAY + timedelta(days=1), AT + timedelta(days=2))
    assert listed(db, second) == {("ABANDONED", "SETTLED_FAILED", "marked_failed")}
    assert db.payments.find_one({"_id": "ABANDONED"})["status"] == "failed"


@pytest.mark.parametrize("breakage", [lambda f: f[:-20], lambda f: f.replace(b"|70000|EOF", b"|70001|EOF"),
                                      lambda f: f.replace("税务局".encode(), "税务局".encode("gbk"))])
def test_a_bad_file_fails_the_run_and_changes_nothing(db, breakage):
    adapter = FileAdapter()
    payment(db, "LIMBO", "unknown")
    payment(db, "OTHER", "unknown")
    adapter.files[DAY] = breakage(statement(DAY, [("Q-L", "LIMBO", 35000, "00"), ("Q-O", "OTHER", 35000, "00")]))
    run_id = run(db, adapter, DAY, AT + timedelta(days=1), chunk=1)
    report = reconciler.report(db, run_id)
    assert report["status"] == "failed" and report["error"]
    assert {p["status"] for p in db.payments.find()} == {"unknown"}
    assert db.outbox.count_documents({"event_type": {"$ne": "reconciliation.failed"}}) == 0
    assert db.reconciliation_items.count_documents({}) == 0
    # and the lock is free again: the next run (with a good file) is accepted
    adapter.files[DAY] = statement(DAY, [("Q-L", "LIMBO", 35000, "00"), ("Q-O", "OTHER", 35000, "00")])
    assert reconciler.report(db, run(db, adapter, DAY, AT + timedelta(days=1)))["status"] == "completed"


def test_a_run_that_dies_half_way_resumes_and_reports_what_it_first_saw(db):
    adapter = FileAdapter()
    details = []
    for i in range(6):
        payment(db, f"L{i}", "unknown")
        details.append((f"Q{i}", f"L{i}", 35000, "00"))
    adapter.files[DAY] = statement(DAY, details)
    now = AT + timedelta(days=1)
    with pytest.raises(RuntimeError):
        run(db, adapter, DAY, now, chunk=2, fail_at=4)  # dies in the second chunk, one of its lines applied
    run_id = db.reconciliations.find_one()["_id"]
    assert reconciler.report(db, run_id)["status"] == "running"
    other = reconciler.start_run
    with pytest.raises(reconciler.Conflict):
        other(db, "unionpay", DAY, now)  # still running: one run per channel and date
    assert reconciler.claim_next(db) is None  # its lease holds until it runs out
    db.reconciliations.update_one({"_id": run_id}, {"$set": {"lease_until": now - timedelta(days=400)}})
    resumed = reconciler.claim_next(db)
    assert resumed["_id"] == run_id and resumed["checkpoint"]["line_no"] == 3
    reconciler.Reconciler(db, service(db, now), adapter, now, chunk=2).run(resumed)
    report = reconciler.report(db, run_id)
    assert report["status"] == "completed"
    assert report["counts"]["LOCAL_NOT_SUCCESS"] == 6 and report["counts"]["matched"] == 0
    assert {p["status"] for p in db.payments.find()} == {"succeeded"}
    assert sorted(e["payment_id"] for e in events(db, "payment.succeeded")) == [f"L{i}" for i in range(6)]
