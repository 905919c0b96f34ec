"""选择计划 → 确认 → 立即缴费 → 确认支付 → 您已经付款****元, through the whole stack as processes: the real plans
service, orders, payment_gateway, the gateway, and the UnionPay simulator as channel and payer's bank."""
import os
import signal
import sys
import time
from datetime import datetime

import eventlet
import pytest
import requests

from servicekit.clock import SHANGHAI
from tests.support.http import Api, add_bureau_plan, error_code, sync_bureaus
from tests.support.people import new_id_number, new_phone

PASSWORD = "pass1234word"
def future_open_time():
    """The 10th, 10:00 Shanghai, of next month: inside the collection window, and in the future, so the database's
    TTL indexes (which run on real time) never purge the codes and sessions the shifted services write."""
    now = datetime.now(SHANGHAI)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 10, 10, 0, tzinfo=SHANGHAI)


OPEN_TIME = future_open_time()


@pytest.fixture
def open_window(clock):
    clock.set(OPEN_TIME)
    return clock


def payer_with_plans(api, sims, clock, periods=("2026-01", "2026-02"), amount="350.00"):
    id_number, name, phone = new_id_number(), "钱缴费", new_phone()
    sims.enroll(id_number, name, "FE_PENSION", enrolled_on="2020-01-01")
    for period in periods:
        add_bureau_plan(sims, f"HR-{id_number}-{period}", id_number, "FE_PENSION", period, amount)
    sync_bureaus(sims)
    api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "register"})
    created = api.post("/api/v1/payers", {"id_number": id_number, "name": name, "phone": phone,
                                          "password": PASSWORD, "sms_code": sims.latest_sms_code(phone)})
    assert created.status_code == 201, created.text
    clock.advance(seconds=61)
    api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "login"})
    login = api.post("/api/v1/sessions", {"id_number": id_number, "name": name, "password": PASSWORD,
                                          "insurance_type": "FE_PENSION", "sms_code": sims.latest_sms_code(phone)})
    assert login.status_code == 201, login.text
    return Api(api.base_url, login.json()["token"])


def bank(stack, payment_id, result):
    answer = requests.post(f"{stack.sim_url}/sim/channels/unionpay/transactions/{payment_id}",
                           json={"result": result}, timeout=10)
    assert answer.status_code == 200, answer.text


def wait_status(me, order_id, wanted, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        order = me.get(f"/api/v1/orders/{order_id}").json()
        if order.get("status") in wanted or time.monotonic() > deadline:
            return order
        time.sleep(0.2)


def order_and_pay(me):
    order = me.post("/api/v1/orders", {})
    assert order.status_code == 201, order.text
    payment = me.post(f"/api/v1/orders/{order.json()['order_id']}/payments", {"channel": "unionpay"})
    assert payment.status_code == 201, payment.text
    return order.json(), payment.json()


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


def _restart(stack, name, module):
    stack.spawn(name, [sys.executable, "-m", "nameko", "run", "--config", str(stack_config()), module],
                stack.env(name))


def stack_config():
    from devstack.stack import NAMEKO_CONFIG

    return NAMEKO_CONFIG


@pytest.mark.slow
def test_orders_killed_before_it_handles_payment_succeeded_still_ends_paid(stack, api, sims, open_window):
    me = payer_with_plans(api, sims, open_window, periods=("2026-01",))
    order, payment = order_and_pay(me)
    process = stack.processes.pop("orders")
    os.killpg(process.pid, signal.SIGKILL)  # no goodbye: whatever it held unacked goes back to the broker
    process.wait(10)
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
        from devstack.stack import SERVICES

        _restart(stack, "orders", SERVICES["orders"])
        stack.wait_ready()
    assert wait_status(me, order["order_id"], {"paid"}, timeout=60)["status"] == "paid"
