"""The pay flow as a front-end drives it, for tests that pay many times: a payer with bureau plans, an order,
a payment, the payer's bank answering on the channel's page, and waiting for the order's truth."""
import time
from datetime import datetime

import requests

from servicekit.clock import SHANGHAI
from tests.support.http import Api, add_bureau_plan, sync_bureaus
from tests.support.people import new_id_number, new_phone

PASSWORD = "pass1234word"


def future_open_time():
    """The 10th, 10:00 Shanghai, of next month: inside the collection window, and in the future, so the database's
    TTL indexes (which run on real time) never purge the codes and sessions the shifted services write."""
    now = datetime.now(SHANGHAI)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 10, 10, 0, tzinfo=SHANGHAI)


def payer_with_plans(api, sims, clock, periods=("2026-01", "2026-02"), amount="350.00", name="钱缴费", sync=True):
    """Enrols a payer with monthly HR plans, registers and logs in; returns their authenticated Api."""
    id_number, phone = new_id_number(), new_phone()
    sims.enroll(id_number, name, "FE_PENSION", enrolled_on="2020-01-01")
    for period in periods:
        add_bureau_plan(sims, f"HR-{id_number}-{period}", id_number, "FE_PENSION", period, amount)
    if sync:
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


def bank(sim_url, payment_id, result):
    """What the payer's bank does on the channel's page: success, fail, silent_success, limbo, duplicate_notify."""
    answer = requests.post(f"{sim_url}/sim/channels/unionpay/transactions/{payment_id}", json={"result": result},
                           timeout=10)
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
