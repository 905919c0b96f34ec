"""The pay flow through the gateway: orders, payments, notifications, status queries, expiry, concurrency.

Real broker and database; the UnionPay simulator plays the channel and the payer's bank.
"""
import eventlet

from tests.support.http import error_code

from .conftest import OPEN_TIME, FakePlans, wait_until


def order_and_pay(flow, api, plan_ids=None):
    created = api.post("/api/v1/orders", {} if plan_ids is None else {"plan_ids": plan_ids})
    assert created.status_code == 201, created.text
    order = created.json()
    payment = api.post(f"/api/v1/orders/{order['order_id']}/payments", {"channel": "unionpay"})
    assert payment.status_code == 201, payment.text
    return order, payment.json()


def paid_events(order_id):
    return [e for t, e in FakePlans.events if t == "order.paid" and e["order_id"] == order_id]


# ---- (1) the happy path ----------------------------------------------------------------------------
def test_happy_path_login_order_pay_notify_paid(flow):
    api, plan_ids = flow.payer(periods=("2026-01", "2026-02"), amount_fen=35000)
    assert api.get("/api/v1/channels").json()["channels"] == [{"code": "unionpay", "name": "云闪付"}]
    created = api.post("/api/v1/orders", {})
    assert created.status_code == 201, created.text
    order = created.json()
    assert (order["status"], order["amount"], order["plan_ids"]) == ("pending", "700.00", plan_ids)
    assert order["expires_at"]
    payment = api.post(f"/api/v1/orders/{order['order_id']}/payments", {"channel": "unionpay"}).json()
    assert payment["amount"] == "700.00"
    page = flow.http.get(payment["pay_url"], timeout=10)
    assert "700.00" in page.text and "确认支付" in page.text and "国家税务总局黑龙江省税务局" in page.text
    assert api.get(f"/api/v1/orders/{order['order_id']}").json()["status"] == "paying"

    # the payer presses 确认支付 on the channel's page
    flow.http.post(payment["pay_url"], data={"result": "success"}, timeout=10)
    paid = flow.wait_order(api, order["order_id"], {"paid"})
    assert paid["message"] == "您已经付款700.00元"
    tickets = [r["tax_ticket_no"] for r in paid["records"]]
    assert len(set(tickets)) == 2 and all(len(t) == 20 for t in tickets)

    wait_until(lambda: paid_events(order["order_id"]), what="order.paid")
    event = paid_events(order["order_id"])[0]
    assert event["payer"]["id_number"] == api.id_number and event["amount_fen"] == 70000
    assert event["channel"] == "unionpay" and event["channel_txn_id"]
    assert [r["tax_ticket_no"] for r in event["records"]] == tickets
    assert all(FakePlans.plans[p]["status"] == "paid" for p in plan_ids)

    payments = api.get("/api/v1/me/payments", params={"paid_from": OPEN_TIME.date().isoformat(), "paid_to": OPEN_TIME.date().isoformat()}).json()
    assert [(p["payment_id"], p["status"], p["amount"]) for p in payments["payments"]] == \
        [(payment["payment_id"], "succeeded", "700.00")]
    # nothing left to pay
    assert error_code(api.post("/api/v1/orders", {})) == "NO_PAYABLE_PLAN"


def test_another_payers_order_is_not_found(flow):
    api, _ = flow.payer()
    other, _ = flow.payer()
    order = api.post("/api/v1/orders", {}).json()
    answer = other.get(f"/api/v1/orders/{order['order_id']}")
    assert answer.status_code == 404 and error_code(answer) == "NOT_FOUND"
    pay = other.post(f"/api/v1/orders/{order['order_id']}/payments", {"channel": "unionpay"})
    assert pay.status_code == 404
    assert api.get(f"/api/v1/orders/{order['order_id']}").json()["status"] == "pending"


def test_sequence_rule_and_bad_input_through_the_gateway(flow):
    api, plan_ids = flow.payer()
    assert error_code(api.post("/api/v1/orders", {"plan_ids": [plan_ids[1]]})) == "PLAN_SEQUENCE_VIOLATION"
    assert error_code(api.post("/api/v1/orders", {"plan_ids": [plan_ids[0], plan_ids[2]]})) == \
        "PLAN_SEQUENCE_VIOLATION"
    assert error_code(api.post("/api/v1/orders", {"plan_ids": "all"})) == "VALIDATION_ERROR"
    assert error_code(api.post("/api/v1/orders", {"plan_ids": []})) == "VALIDATION_ERROR"
    created = api.post("/api/v1/orders", {"plan_ids": [plan_ids[1], plan_ids[0]]})
    assert created.status_code == 201 and created.json()["plan_ids"] == plan_ids[:2]
    # the third is free, but the first two are taken: ordering "all" again collides
    assert error_code(api.post("/api/v1/orders", {})) == "PLAN_LOCKED"
    assert error_code(api.post(f"/api/v1/orders/{created.json()['order_id']}/payments",
                               {"channel": "wechat"})) == "VALIDATION_ERROR"
    assert api.get("/api/v1/me/payments", params={"paid_from": OPEN_TIME.date().isoformat(), "paid_to": OPEN_TIME.replace(day=1).date().isoformat()}) \
        .status_code == 400
    empty = api.get("/api/v1/me/payments", params={"paid_from": OPEN_TIME.replace(day=1).date().isoformat(), "paid_to": OPEN_TIME.replace(day=28).date().isoformat()}).json()
    assert empty == {"payments": [], "message": "未查询到缴费记录"}


def test_window_closed_is_answered_before_anything_else(flow):
    flow.set_clock(OPEN_TIME.replace(day=25, hour=16, minute=57, second=0))
    api, _ = flow.payer(periods=())  # nothing payable at all (logging in moves the clock 61 s)
    assert error_code(api.post("/api/v1/orders", {})) == "NO_PAYABLE_PLAN"
    flow.set_clock(OPEN_TIME.replace(day=25, hour=17, minute=0, second=0))
    closed = api.post("/api/v1/orders", {})
    assert closed.status_code == 409 and error_code(closed) == "PAYMENT_WINDOW_CLOSED"


# ---- (2) channel fail ----------------------------------------------------------------------------
def test_channel_fail_fails_the_order_releases_plans_and_a_second_payment_succeeds(flow):
    api, plan_ids = flow.payer()
    order, payment = order_and_pay(flow, api)
    flow.bank(payment["payment_id"], "fail")
    failed = flow.wait_order(api, order["order_id"], {"failed"})
    assert "重新" in failed["message"]
    wait_until(lambda: all(FakePlans.plans[p]["status"] == "unpaid" for p in plan_ids), what="plans released")
    # a failed order is final
    assert error_code(api.post(f"/api/v1/orders/{order['order_id']}/payments", {"channel": "unionpay"})) == "CONFLICT"
    second, payment2 = order_and_pay(flow, api)
    assert second["order_id"] != order["order_id"]
    flow.bank(payment2["payment_id"], "success")
    assert flow.wait_order(api, second["order_id"], {"paid"})["message"] == "您已经付款1050.00元"


def test_one_active_payment_per_order(flow):
    api, _ = flow.payer()
    order, payment = order_and_pay(flow, api)
    again = api.post(f"/api/v1/orders/{order['order_id']}/payments", {"channel": "unionpay"})
    assert again.status_code == 409 and error_code(again) == "CONFLICT"


# ---- (3) notifications -----------------------------------------------------------------------------
def test_forged_signature_and_wrong_amount_pay_nothing(flow):
    api, _ = flow.payer(periods=("2026-01",))
    order, payment = order_and_pay(flow, api)
    flow.bank(payment["payment_id"], "silent_success")  # the real notification is lost
    genuine = flow.channel_txn(payment["payment_id"])["notification"]
    forged = dict(genuine, respCode="00", queryId="9999")
    answer = flow.notify(forged)
    assert answer.status_code == 400 and error_code(answer) == "SIGNATURE_INVALID"
    for junk in ({}, {"signature": "abc"}, "not a form at all"):
        answer = flow.http.post(f"{flow.gateway_url}/api/v1/notify/unionpay", data=junk, timeout=10)
        assert answer.status_code == 400 and error_code(answer) == "SIGNATURE_INVALID"
    assert api.get(f"/api/v1/orders/{order['order_id']}").json()["status"] in ("paying", "paid")

    api2, _ = flow.payer(periods=("2026-01",))
    order2, payment2 = order_and_pay(flow, api2)
    flow.bank(payment2["payment_id"], "success", amount="1.00")  # the bank took 1.00, not 350.00
    unknown = flow.wait_order(api2, order2["order_id"], {"unknown", "paid"})
    assert unknown["status"] == "unknown"
    with flow.rpc("payment_gateway") as pg:
        details = pg.get_payment(payment2["payment_id"])
    assert details["status"] == "mismatch"
    assert [(m["kind"], m["channel_amount_fen"]) for m in details["mismatches"]] == [("AMOUNT_MISMATCH", 100)]
    eventlet.sleep(1)
    assert not paid_events(order2["order_id"])


def test_same_notification_ten_times_concurrently_changes_state_once(flow):
    api, _ = flow.payer(periods=("2026-01", "2026-02"))
    order, payment = order_and_pay(flow, api)
    flow.bank(payment["payment_id"], "silent_success")
    fields = flow.channel_txn(payment["payment_id"])["notification"]
    pool = eventlet.GreenPool(10)
    answers = list(pool.imap(lambda i: flow.notify(fields, as_json=i % 2 == 0), range(10)))
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    verdicts = sorted(a.json()["result"] for a in answers)
    assert verdicts.count("succeeded") == 1 and verdicts.count("duplicate") == 9, verdicts
    flow.wait_order(api, order["order_id"], {"paid"})
    eventlet.sleep(1.5)  # time for any second event to show up
    assert len(paid_events(order["order_id"])) == 1


def test_duplicate_notify_from_the_channel_is_harmless(flow):
    api, _ = flow.payer(periods=("2026-01",))
    order, payment = order_and_pay(flow, api)
    flow.bank(payment["payment_id"], "duplicate_notify")
    flow.wait_order(api, order["order_id"], {"paid"})
    wait_until(lambda: flow.channel_txn(payment["payment_id"])["deliveries"].count(200) == 3, what="3 deliveries")
    eventlet.sleep(1)
    assert len(paid_events(order["order_id"])) == 1


# ---- (4) the active status query ----------------------------------------------------------------
def test_lost_notification_is_settled_by_the_status_query(flow):
    api, _ = flow.payer(periods=("2026-01",))
    order, payment = order_and_pay(flow, api)
    flow.bank(payment["payment_id"], "silent_success")
    paid = flow.wait_order(api, order["order_id"], {"paid"})
    assert paid["message"] == "您已经付款350.00元"
    with flow.rpc("payment_gateway") as pg:
        assert pg.get_payment(payment["payment_id"])["status"] == "succeeded"


def test_channel_that_cannot_tell_ends_unknown_and_keeps_plans_locked(flow):
    api, plan_ids = flow.payer(periods=("2026-01",))
    order, payment = order_and_pay(flow, api)
    flow.bank(payment["payment_id"], "limbo")
    unknown = flow.wait_order(api, order["order_id"], {"unknown", "paid", "failed"})
    assert unknown["status"] == "unknown"
    assert FakePlans.plans[plan_ids[0]]["status"] == "locked"
    # ... and it never expires while unknown
    flow.clock_shift(minutes=31)
    eventlet.sleep(2)
    with flow.rpc("orders") as orders:
        assert orders.get_order(order["order_id"], api.payer_id)["status"] == "unknown"
    # a late notification still settles it (the channel finally speaks)
    genuine = flow.channel_txn(payment["payment_id"])["notification"]
    assert flow.notify(genuine).status_code == 200
    wait_until(lambda: paid_events(order["order_id"]), what="order.paid after unknown")


# ---- (5) expiry ------------------------------------------------------------------------------------
def test_unpaid_order_expires_and_releases_plans_but_a_paying_one_does_not(flow):
    api, plan_ids = flow.payer(periods=("2026-01",))
    idle = api.post("/api/v1/orders", {}).json()
    api2, plan_ids2 = flow.payer(periods=("2026-01",))
    paying, payment = order_and_pay(flow, api2)
    flow.bank(payment["payment_id"], "limbo")  # money on its way; the channel cannot say yet
    flow.clock_shift(minutes=31)
    wait_until(lambda: FakePlans.plans[plan_ids[0]]["status"] == "unpaid", what="expiry releases plans")
    released = [e for t, e in FakePlans.events if t == "order.released" and e["order_id"] == idle["order_id"]]
    assert released[0]["reason"] == "expired" and released[0]["plan_ids"] == plan_ids
    with flow.rpc("orders") as orders:
        assert orders.get_order(idle["order_id"], api.payer_id)["status"] == "expired"
        assert orders.get_order(paying["order_id"], api2.payer_id)["status"] in ("paying", "unknown")
    assert FakePlans.plans[plan_ids2[0]]["status"] == "locked"


# ---- (6) concurrency -------------------------------------------------------------------------------
def test_twenty_concurrent_orders_for_the_same_plans_one_wins(flow):
    api, plan_ids = flow.payer()
    pool = eventlet.GreenPool(20)
    answers = list(pool.imap(lambda _: api.post("/api/v1/orders", {}) if False else
                             __import__("requests").post(f"{flow.gateway_url}/api/v1/orders", json={},
                                                         headers={"Authorization": f"Bearer {api.token}"},
                                                         timeout=60), range(20)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1, [a.text for a in answers]
    assert all(error_code(a) == "PLAN_LOCKED" for a in answers if a.status_code != 201)
    winner = next(a.json() for a in answers if a.status_code == 201)
    assert {FakePlans.plans[p]["order_id"] for p in plan_ids} == {winner["order_id"]}


# ---- (7) reliable handlers -------------------------------------------------------------------------
def test_a_handler_that_keeps_failing_is_dead_lettered_not_forgotten(flow):
    from nameko.standalone.events import event_dispatcher

    from servicekit.reliable import read_dead_letters

    dispatch = event_dispatcher(flow.config)
    # payment.succeeded for an order that does not exist: the handler fails every attempt
    dispatch("payment_gateway", "payment.succeeded", {
        "event_id": "evt-dlq-test", "occurred_at": OPEN_TIME.isoformat(), "schema_version": 1,
        "payment_id": "nope", "order_id": "no-such-order", "channel": "unionpay", "channel_txn_id": "x",
        "amount_fen": 1, "paid_at": OPEN_TIME.isoformat()})
    letters = wait_until(lambda: [l for l in read_dead_letters(flow.config["AMQP_URI"], "orders")
                                  if l["payload"]["event_id"] == "evt-dlq-test"], what="dead letter")
    assert letters[0]["event_type"] == "payment.succeeded" and letters[0]["attempts"] == 3
    assert "no-such-order" in letters[0]["error"]


def test_a_success_that_overtakes_start_payment_pays_the_order(flow):
    """The channel can confirm the money before orders has recorded the payment (start_payment still in flight,
    or its write lost with a crashed database): the order adopts the confirmed payment when the amount agrees,
    and the late start_payment is answered as a retry. A different amount is never adopted."""
    from nameko.standalone.events import event_dispatcher

    def succeeded(order, payment_id, amount_fen):
        event_dispatcher(flow.config)("payment_gateway", "payment.succeeded", {
            "event_id": f"evt-{payment_id}", "occurred_at": OPEN_TIME.isoformat(), "schema_version": 1,
            "payment_id": payment_id, "order_id": order["order_id"], "channel": "unionpay",
            "channel_txn_id": f"txn-{payment_id}", "amount_fen": amount_fen, "paid_at": OPEN_TIME.isoformat()})

    api, plan_ids = flow.payer(periods=("2026-01",))
    order = api.post("/api/v1/orders", {}).json()
    succeeded(order, "pay-race", 35000)
    assert flow.wait_order(api, order["order_id"], {"paid"})["message"] == "您已经付款350.00元"
    with flow.rpc("orders") as orders:
        assert orders.start_payment(order["order_id"], api.payer_id, "pay-race", "unionpay")["status"] == "paid"
    wait_until(lambda: FakePlans.plans[plan_ids[0]]["status"] == "paid", what="plan paid")

    other_api, _ = flow.payer(periods=("2026-02",))
    other = other_api.post("/api/v1/orders", {}).json()
    succeeded(other, "pay-short", 100)
    eventlet.sleep(1)
    assert other_api.get(f"/api/v1/orders/{other['order_id']}").json()["status"] == "pending"


def test_a_failure_that_overtakes_start_payment_fails_the_order_and_frees_its_plans(flow):
    from nameko.standalone.events import event_dispatcher

    api, plan_ids = flow.payer(periods=("2026-03",))
    order = api.post("/api/v1/orders", {}).json()
    event_dispatcher(flow.config)("payment_gateway", "payment.failed", {
        "event_id": "evt-fail-race", "occurred_at": OPEN_TIME.isoformat(), "schema_version": 1,
        "payment_id": "pay-fail-race", "order_id": order["order_id"], "channel": "unionpay", "reason": "channel:05"})
    assert flow.wait_order(api, order["order_id"], {"failed"})["status"] == "failed"
    wait_until(lambda: FakePlans.plans[plan_ids[0]]["status"] == "unpaid", what="plan released")
