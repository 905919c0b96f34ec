"""选择计划 → 确认 → 立即缴费 → 确认支付 → 您已经付款****元, through the whole stack as processes: the real plans
service, orders, payment_gateway, the gateway, and the UnionPay simulator as channel and payer's bank."""
import time

import eventlet
import pytest
import requests

from tests.support.http import error_code
from tests.support.payflow import bank as payflow_bank
from tests.support.payflow import future_open_time, order_and_pay, payer_with_plans, wait_status

OPEN_TIME = future_open_time()


@pytest.fixture
def open_window(clock):
    clock.set(OPEN_TIME)
    return clock


def bank(stack, payment_id, result):
    payflow_bank(stack.sim_url, payment_id, result)


def test_happy_path_with_the_real_plans_service(stack, api, sims, open_window):
    me = payer_with_plans(api, sims, open_window)
    plans = me.get("/api/v1/me/plans").json()["plans"]
    assert [p["period"] for p in plans] == ["2026-01", "2026-02"]
    assert [c["code"] for c in me.get("/api/v1/channels").json()["channels"]] == ["unionpay"]
    order, payment = order_and_pay(me)
    assert (order["status"], order["amount"]) == ("pending", "700.00")
    assert sorted(order["plan_ids"]) == sorted(p["plan_id"] for p in plans)
    page = requests.get(payment["pay_url"], timeout=10).text
    assert "700.00" in page and "确认支付" in page
    requests.post(payment["pay_url"], data={"result": "success"}, timeout=10)  # 确认支付

    paid = wait_status(me, order["order_id"], {"paid"})
    assert paid["status"] == "paid" and paid["message"] == "您已经付款700.00元"
    deadline = time.monotonic() + 20
    while me.get("/api/v1/me/plans").json()["plans"] and time.monotonic() < deadline:
        time.sleep(0.2)
    body = me.get("/api/v1/me/plans").json()
    assert body["plans"] == [] and body["message"].startswith("当前没有可缴费计划")
    payments = me.get("/api/v1/me/payments", params={"paid_from": OPEN_TIME.date().isoformat(), "paid_to": OPEN_TIME.date().isoformat()}).json()
    assert [(p["payment_id"], p["status"]) for p in payments["payments"]] == [(payment["payment_id"], "succeeded")]


def test_twenty_concurrent_orders_against_the_real_plans_lock(stack, api, sims, open_window):
    me = payer_with_plans(api, sims, open_window, periods=("2026-01", "2026-02", "2026-03"))
    pool = eventlet.GreenPool(20)
    answers = list(pool.imap(lambda _: requests.post(f"{stack.gateway_url}/api/v1/orders", json={}, timeout=60,
                                                     headers={"Authorization": f"Bearer {me.token}"}), range(20)))
    assert sorted(a.status_code for a in answers).count(201) == 1, [a.text for a in answers]
    assert {error_code(a) for a in answers if a.status_code != 201} == {"PLAN_LOCKED"}


def test_channel_fail_then_pay_again(stack, api, sims, open_window):
    me = payer_with_plans(api, sims, open_window, periods=("2026-01",))
    order, payment = order_and_pay(me)
    bank(stack, payment["payment_id"], "fail")
    assert wait_status(me, order["order_id"], {"failed"})["status"] == "failed"
    deadline = time.monotonic() + 20
    while not me.get("/api/v1/me/plans").json()["plans"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p["status"] for p in me.get("/api/v1/me/plans").json()["plans"]] == ["unpaid"]
    order2, payment2 = order_and_pay(me)
    bank(stack, payment2["payment_id"], "success")
    assert wait_status(me, order2["order_id"], {"paid"})["message"] == "您已经付款350.00元"


@pytest.mark.slow
def test_orders_killed_before_it_handles_payment_succeeded_still_ends_paid(stack, api, sims, open_window):
    me = payer_with_plans(api, sims, open_window, periods=("2026-01",))
    order, payment = order_and_pay(me)
    stack.kill("orders")  # no goodbye: whatever it held unacked goes back to the broker
    try:
        bank(stack, payment["payment_id"], "success")
        # the notification is stored and acknowledged by payment_gateway; payment.succeeded waits in orders' queue
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            got = requests.get(f"{stack.sim_url}/sim/channels/unionpay/transactions/{payment['payment_id']}",
                               timeout=10).json()
            if 200 in got["deliveries"]:
                break
            time.sleep(0.2)
        assert 200 in got["deliveries"]
    finally:
        stack.restart("orders")
        stack.wait_ready()
    assert wait_status(me, order["order_id"], {"paid"}, timeout=60)["status"] == "paid"
