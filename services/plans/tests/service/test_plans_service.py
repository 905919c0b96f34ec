"""plans in a Nameko container on the real broker and database; the bureau simulators in-process."""
import time
import uuid

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher

from servicekit.errors import AppError
from tests.support.people import new_id_number


def wait_for(predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        eventlet.sleep(0.1)
    raise AssertionError("condition not reached")


def periods(plans):
    return [p["period"] for p in plans]


@pytest.fixture
def payer(bsim):
    id_number = new_id_number()
    bsim.enroll(id_number, "钱七", "FE_PENSION")
    return id_number


def test_sync_pages_through_both_bureaus_and_keeps_cursors(plans, bsim, plans_db):
    hr_payer, medical_payer = new_id_number(), new_id_number()
    bsim.enroll(hr_payer, "甲", "FE_PENSION")
    bsim.enroll(medical_payer, "乙", "RR_MEDICAL")
    # more than one page (1000) from the HR bureau
    for month in range(1, 13):
        bsim.plan(f"P-{hr_payer}-{month}", hr_payer, "FE_PENSION", f"2025-{month:02d}", "350.00")
    bsim.plan(f"M-{medical_payer}", medical_payer, "RR_MEDICAL", "2026-01", "380.00",
              deadline="2025-12-31T17:00:00+08:00")
    first = bsim.sync()
    assert first["synced"], first
    hr_plans = plans.payable_plans(hr_payer, "FE_PENSION")
    assert periods(hr_plans) == [f"2025-{m:02d}" for m in range(1, 13)]
    assert {p["amount_fen"] for p in hr_plans} == {35000}
    assert {p["status"] for p in hr_plans} == {"unpaid"}
    medical = plans.payable_plans(medical_payer, "RR_MEDICAL")
    assert [(p["amount_fen"], p["deadline"]) for p in medical] == [(38000, "2025-12-31T17:00:00+08:00")]
    cursors = {d["_id"]: d["cursor"] for d in plans_db.sync_state.find()}
    assert int(cursors["hr"]) >= 13 and int(cursors["medical"]) >= 2
    assert {e["insurance_type"] for e in plans.enrollments(hr_payer)} == {"FE_PENSION"}
    # a re-sync reads nothing new and writes nothing
    before = {d["_id"]: d["rev"] for d in plans_db.plans.find({"id_number": hr_payer})}
    again = bsim.sync()
    assert again["bureaus"]["hr"]["changes"] == 0 and again["bureaus"]["hr"]["written"] == 0
    assert {d["_id"]: d["rev"] for d in plans_db.plans.find({"id_number": hr_payer})} == before


def test_paging_small_pages(plans, payer, bsim, plans_config):
    from plans.adapters import HttpBureau
    from plans.sync import BureauSync
    import requests

    for month in range(1, 8):
        bsim.plan(f"S-{payer}-{month}", payer, "FE_PENSION", f"2024-{month:02d}", "100.00")
    # a sync with pages of 3 goes page by page from the stored cursor
    from servicekit import config as cfg
    from servicekit.clock import SystemClock
    from servicekit.mongo import shared_client

    db = shared_client(plans_config)[cfg.database_name(plans_config, "plans")]
    client = HttpBureau("hr", plans_config["HR_BUREAU_URL"], requests.Session())
    totals = BureauSync(db, "hr", client, SystemClock(), page_size=3).run()
    assert totals["pages"] >= 3
    assert periods(plans.payable_plans(payer, "FE_PENSION")) == [f"2024-{m:02d}" for m in range(1, 8)]


def test_re_sent_identical_plan_changes_nothing(plans, payer, bsim, plans_db):
    bsim.plan(f"R-{payer}", payer, "FE_PENSION", "2025-03", "350.00", deadline="2025-03-25T17:00:00+08:00")
    bsim.sync()
    rev = plans_db.plans.find_one({"_id": f"R-{payer}"})["rev"]
    outbox = plans_db.outbox.count_documents({})
    bsim.plan(f"R-{payer}", payer, "FE_PENSION", "2025-03", "350.00", deadline="2025-03-25T17:00:00+08:00")
    result = bsim.sync()
    assert result["bureaus"]["hr"]["changes"] == 1 and result["bureaus"]["hr"]["written"] == 0
    assert plans_db.plans.find_one({"_id": f"R-{payer}"})["rev"] == rev
    assert plans_db.outbox.count_documents({}) == outbox


def test_revision_updates_unpaid_and_is_refused_for_paid(plans, payer, bsim, plans_db, plans_config):
    bsim.plan(f"A-{payer}", payer, "FE_PENSION", "2025-01", "350.00")
    bsim.plan(f"B-{payer}", payer, "FE_PENSION", "2025-02", "350.00")
    bsim.sync()
    order_id = uuid.uuid4().hex
    plans.lock_plans(order_id, payer, "FE_PENSION", [f"A-{payer}"])
    dispatch_order_paid(plans_config, order_id, payer, [f"A-{payer}"])
    wait_for(lambda: plans_db.plans.find_one({"_id": f"A-{payer}"})["status"] == "paid")

    bsim.plan(f"A-{payer}", payer, "FE_PENSION", "2025-01", "400.00")
    bsim.plan(f"B-{payer}", payer, "FE_PENSION", "2025-02", "400.00")
    bsim.sync()
    paid = plans_db.plans.find_one({"_id": f"A-{payer}"})
    assert (paid["status"], paid["amount_fen"]) == ("paid", 35000)
    assert paid["refused_revision"]["new_amount_fen"] == 40000
    assert [(p["plan_id"], p["amount_fen"]) for p in plans.payable_plans(payer, "FE_PENSION")] == \
        [(f"B-{payer}", 40000)]
    events = {e["event"]["plan_id"]: e["event"] for e in plans_db.outbox.find({"event_type": "plan.revised"})
              if e["event"]["id_number"] == payer}
    assert (events[f"A-{payer}"]["applied"], events[f"A-{payer}"]["reason"]) == (False, "paid")
    assert events[f"B-{payer}"]["applied"] is True


def test_withdrawal_hides_unpaid_keeps_locked_until_released(plans, payer, bsim, plans_db, plans_config):
    bsim.plan(f"W1-{payer}", payer, "FE_PENSION", "2025-01", "350.00")
    bsim.plan(f"W2-{payer}", payer, "FE_PENSION", "2025-02", "350.00")
    bsim.plan(f"W3-{payer}", payer, "FE_PENSION", "2025-03", "350.00")
    bsim.sync()
    order_id = uuid.uuid4().hex
    plans.lock_plans(order_id, payer, "FE_PENSION", [f"W1-{payer}"])
    bsim.withdraw("hr", f"W1-{payer}")
    bsim.withdraw("hr", f"W3-{payer}")
    bsim.sync()
    open_plans = plans.payable_plans(payer, "FE_PENSION")
    assert [(p["plan_id"], p["status"], p["order_id"]) for p in open_plans] == \
        [(f"W1-{payer}", "locked", order_id), (f"W2-{payer}", "unpaid", None)]
    dispatch(plans_config, "order.released", {"order_id": order_id, "plan_ids": [f"W1-{payer}"],
                                              "reason": "expired"})
    wait_for(lambda: plans_db.plans.find_one({"_id": f"W1-{payer}"})["status"] == "withdrawn")
    assert [p["plan_id"] for p in plans.payable_plans(payer, "FE_PENSION")] == [f"W2-{payer}"]


@pytest.mark.parametrize("mode", ["error", "garbage"])
def test_bureau_failure_keeps_last_good_data(plans, payer, bsim, plans_db, mode):
    bsim.plan(f"F-{mode}-{payer}", payer, "FE_PENSION", "2025-05", "350.00")
    assert bsim.sync()["synced"]
    cursor = plans_db.sync_state.find_one({"_id": "hr"})["cursor"]
    bsim.plan(f"F-{mode}-{payer}", payer, "FE_PENSION", "2025-05", "999.00")
    bsim.fault("hr", mode)
    try:
        result = bsim.sync()
    finally:
        bsim.fault("hr", "none")
    assert result["synced"] is False and result["bureaus"]["hr"]["ok"] is False
    assert result["bureaus"]["medical"]["ok"] is True
    assert [p["amount_fen"] for p in plans.payable_plans(payer, "FE_PENSION")] == [35000]
    state = plans_db.sync_state.find_one({"_id": "hr"})
    assert state["cursor"] == cursor and state["failures"] >= 1 and state["next_attempt_at"]
    assert plans.sync_status()["bureaus"]["hr"]["failures"] >= 1
    # back: the change is applied and the failure count resets
    assert bsim.sync()["synced"]
    assert [p["amount_fen"] for p in plans.payable_plans(payer, "FE_PENSION")] == [99900]
    assert plans.sync_status()["bureaus"]["hr"] | {"status": "fresh", "failures": 0} == \
        plans.sync_status()["bureaus"]["hr"]


def test_lock_plans_all_or_nothing_and_idempotent(plans, payer, bsim):
    ids = [f"L{i}-{payer}" for i in range(3)]
    for i, plan_id in enumerate(ids):
        bsim.plan(plan_id, payer, "FE_PENSION", f"2025-0{i + 1}", "350.00")
    bsim.sync()
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    locked = plans.lock_plans(first, payer, "FE_PENSION", ids[:2])
    assert [(p["plan_id"], p["status"], p["order_id"]) for p in locked] == \
        [(ids[0], "locked", first), (ids[1], "locked", first)]
    assert plans.lock_plans(first, payer, "FE_PENSION", ids[:2]) == locked  # retried call
    with pytest.raises(AppError) as taken:
        plans.lock_plans(second, payer, "FE_PENSION", [ids[2], ids[1]])
    assert taken.value.code == "PLAN_LOCKED"
    # what the failed call took is released
    assert [p["status"] for p in plans.payable_plans(payer, "FE_PENSION")] == ["locked", "locked", "unpaid"]
    with pytest.raises(AppError) as foreign:
        plans.lock_plans(second, new_id_number(), "FE_PENSION", [ids[2]])
    assert foreign.value.code == "NOT_FOUND"
    with pytest.raises(AppError) as unknown:
        plans.lock_plans(second, payer, "FE_PENSION", ["no-such-plan"])
    assert unknown.value.code == "NOT_FOUND"


def test_concurrent_locks_one_winner(plans_config, payer, bsim, plans):
    from nameko.standalone.rpc import ClusterRpcProxy

    ids = [f"C{i}-{payer}" for i in range(3)]
    for i, plan_id in enumerate(ids):
        bsim.plan(plan_id, payer, "FE_PENSION", f"2025-0{i + 1}", "350.00")
    bsim.sync()

    def attempt(order_id):
        with ClusterRpcProxy(plans_config, timeout=30) as cluster:
            try:
                return cluster.plans.lock_plans(order_id, payer, "FE_PENSION", ids)
            except AppError as exc:
                return exc.code

    pool = eventlet.GreenPool()
    results = list(pool.imap(attempt, [uuid.uuid4().hex for _ in range(4)]))
    winners = [r for r in results if isinstance(r, list)]
    assert len(winners) == 1, results
    assert all(r == "PLAN_LOCKED" for r in results if not isinstance(r, list))
    holders = {p["order_id"] for p in plans.payable_plans(payer, "FE_PENSION")}
    assert holders == {winners[0][0]["order_id"]}


def test_order_events_are_idempotent(plans, payer, bsim, plans_db, plans_config):
    ids = [f"E{i}-{payer}" for i in range(2)]
    for i, plan_id in enumerate(ids):
        bsim.plan(plan_id, payer, "FE_PENSION", f"2025-0{i + 1}", "350.00")
    bsim.sync()
    released_order, paid_order = uuid.uuid4().hex, uuid.uuid4().hex
    plans.lock_plans(released_order, payer, "FE_PENSION", ids)
    release = {"event_id": uuid.uuid4().hex, "order_id": released_order, "plan_ids": ids, "reason": "failed"}
    dispatch(plans_config, "order.released", release)
    wait_for(lambda: all(p["status"] == "unpaid" for p in plans.payable_plans(payer, "FE_PENSION")))
    plans.lock_plans(paid_order, payer, "FE_PENSION", ids)
    dispatch(plans_config, "order.released", release)  # redelivered: must not free the new order's plans
    paid_event = dispatch_order_paid(plans_config, paid_order, payer, ids)
    wait_for(lambda: plans.payable_plans(payer, "FE_PENSION") == [])
    dispatch(plans_config, "order.paid", paid_event)  # duplicate
    eventlet.sleep(1)
    docs = list(plans_db.plans.find({"_id": {"$in": ids}}))
    assert {(d["status"], d["order_id"], d["tax_ticket_no"]) for d in docs} == \
        {("paid", paid_order, f"T-{ids[0]}"), ("paid", paid_order, f"T-{ids[1]}")}
    assert plans_db.processed_events.count_documents({"event_id": paid_event["event_id"]}) == 1


def test_malformed_order_event_goes_to_the_dead_letter_queue_and_changes_nothing(plans, payer, bsim, plans_config):
    from servicekit.reliable import read_dead_letters

    plan_id = f"M1-{payer}"
    bsim.plan(plan_id, payer, "FE_PENSION", "2025-05", "350.00")
    bsim.sync()
    order_id = uuid.uuid4().hex
    plans.lock_plans(order_id, payer, "FE_PENSION", [plan_id])
    broken = dispatch(plans_config, "order.released", {"order_id": order_id, "plan_ids": plan_id})  # not a list
    letter = wait_for(lambda: next((letter for letter in read_dead_letters(plans_config["AMQP_URI"], "plans")
                                    if letter["payload"]["event_id"] == broken["event_id"]), None))
    assert letter["reason"] == "rejected" and letter["handler"] == "on_order_released"
    assert [p["status"] for p in plans.payable_plans(payer, "FE_PENSION") if p["plan_id"] == plan_id] == ["locked"]


def test_enrollment_and_empty_plan_message(plans, bsim):
    id_number = new_id_number()
    bsim.enroll(id_number, "丙", "FE_MEDICAL", enrolled_on="2021-03-01")
    bsim.enroll(id_number, "丙", "RR_MEDICAL", region_code="230103")
    bsim.sync()
    assert plans.enrollment(id_number, "FE_MEDICAL")["region_code"] == "230102"
    medical = plans.enrollment(id_number, "RR_MEDICAL")
    assert (medical["region_code"], medical["source"]) == ("230103", "medical_bureau")
    with pytest.raises(AppError) as missing:
        plans.enrollment(id_number, "RR_PENSION")
    assert missing.value.code == "NOT_FOUND"
    empty = plans.payer_plans(id_number, "FE_MEDICAL")
    assert empty["plans"] == [] and empty["message"].startswith("当前没有可缴费计划")
    assert "主管税务机关" in empty["message"]
    assert "医保经办机构" in plans.payer_plans(id_number, "RR_MEDICAL")["message"]


def test_mudanjiang_declare_and_void(plans, bsim, plans_db, plans_config):
    id_number = new_id_number(region="231002")
    bsim.enroll(id_number, "赵丽", "FE_PENSION", region_code="231002", enrolled_on="2020-01-01")
    bsim.sync()
    options = plans.declaration_options(id_number, "FE_PENSION")
    assert options["grades"][0]["base_ratio_pct"] == 60 and options["grades"][-1]["base_ratio_pct"] == 300
    first_periods = options["periods"][:2]
    with pytest.raises(AppError) as skipped:
        plans.declare(id_number, "FE_PENSION", options["periods"][1:3], 1)
    assert skipped.value.code == "PLAN_SEQUENCE_VIOLATION"
    declared = plans.declare(id_number, "FE_PENSION", first_periods, 1)
    assert declared["status"] == "confirmed" and len(declared["plan_ids"]) == 2
    payable = plans.payable_plans(id_number, "FE_PENSION")
    assert [p["period"] for p in payable] == first_periods
    assert {p["amount_fen"] for p in payable} == {options["grades"][0]["monthly_amount_fen"]}
    assert plans.declaration_options(id_number, "FE_PENSION")["periods"][0] == options["periods"][2]
    with pytest.raises(AppError) as again:
        plans.declare(id_number, "FE_PENSION", first_periods, 2)
    assert again.value.code == "CONFLICT"
    bsim.sync()  # the bureau's feed carries the same plans: nothing changes
    assert plans.payable_plans(id_number, "FE_PENSION") == payable

    assert plans.void_declaration(id_number, "FE_PENSION", declared["declaration_id"])["status"] == "voided"
    assert plans.payable_plans(id_number, "FE_PENSION") == []
    bsim.sync()
    assert plans.payable_plans(id_number, "FE_PENSION") == []
    assert plans.declaration_options(id_number, "FE_PENSION")["periods"][0] == options["periods"][0]

    # a declaration with a paid plan cannot be voided
    second = plans.declare(id_number, "FE_PENSION", first_periods, 3)
    order_id = uuid.uuid4().hex
    plans.lock_plans(order_id, id_number, "FE_PENSION", second["plan_ids"][:1])
    with pytest.raises(AppError) as locked:
        plans.void_declaration(id_number, "FE_PENSION", second["declaration_id"])
    assert locked.value.code == "CONFLICT"
    dispatch_order_paid(plans_config, order_id, id_number, second["plan_ids"][:1])
    wait_for(lambda: plans_db.plans.find_one({"_id": second["plan_ids"][0]})["status"] == "paid")
    with pytest.raises(AppError) as paid:
        plans.void_declaration(id_number, "FE_PENSION", second["declaration_id"])
    assert paid.value.code == "CONFLICT"
    assert len(plans.payable_plans(id_number, "FE_PENSION")) == 1


def test_declaration_refused_outside_mudanjiang(plans, payer, bsim):
    bsim.sync()
    with pytest.raises(AppError) as refused:
        plans.declaration_options(payer, "FE_PENSION")
    assert refused.value.code == "CONFLICT" and "牡丹江" in refused.value.message


# ---- helpers ---------------------------------------------------------------------------------------
def dispatch(config, event_type, payload):
    body = {"event_id": uuid.uuid4().hex, "occurred_at": "2025-01-01T00:00:00+00:00", "schema_version": 1,
            **payload}
    event_dispatcher(config)("orders", event_type, body)
    return body


def dispatch_order_paid(config, order_id, id_number, plan_ids):
    return dispatch(config, "order.paid", {
        "order_id": order_id, "payer": {"payer_id": "p1", "id_number": id_number, "name": "钱七"},
        "insurance_type": "FE_PENSION", "amount_fen": 35000 * len(plan_ids),
        "paid_at": "2025-01-10T10:00:00+08:00", "payment_id": "pay1", "channel": "unionpay",
        "channel_txn_id": "t1",
        "records": [{"plan_id": p, "period": "2025-01", "amount_fen": 35000, "tax_ticket_no": f"T-{p}"}
                    for p in plan_ids]})
