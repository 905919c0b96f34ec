"""Fixtures of the security tests, and the hook that runs the log check last in the whole session."""
import time
from datetime import datetime

import pytest
import requests

from servicekit.clock import SHANGHAI
from tests.support.http import Api, Simulators, add_bureau_plan, sync_bureaus
from tests.support.payers import register_and_login
from tests.support.people import new_id_number

OPEN_TIME = datetime(2026, 3, 12, 10, 0, tzinfo=SHANGHAI)
LOG_CHECK_MODULE = "test_zz_log_hygiene.py"


def pytest_collection_modifyitems(session, config, items):
    """The log check reads what the whole run wrote: move it after every other test of the session."""
    last = [item for item in items if item.path.name == LOG_CHECK_MODULE]
    items[:] = [item for item in items if item.path.name != LOG_CHECK_MODULE] + last


def wait_for(probe, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture(scope="module")
def sec_sims(stack):
    sims = Simulators(stack.sim_url)
    sims.set_clock(OPEN_TIME)
    yield sims
    sims.reset_clock()


@pytest.fixture(scope="module")
def victim(stack, sec_sims):
    """A 牡丹江 payer with something behind every id an attacker could try: a paid order (payment, records,
    a certificate), a declaration whose plan is in a pending order with an open payment, a voidable declaration
    and an HR plan nobody ordered yet."""
    api = Api(stack.gateway_url)
    id_number = new_id_number(region="231002")
    sec_sims.enroll(id_number, "郑受害", "FE_PENSION", region_code="231002", enrolled_on="2020-01-01")
    sync_bureaus(sec_sims)
    payer = register_and_login(api, sec_sims, "郑受害", region_code="231002", id_number=id_number, enroll=False)
    me = payer.api
    options = me.get("/api/v1/me/declaration-options").json()
    grade, periods = options["grades"][0]["grade"], options["periods"]
    declarations = []
    for period in periods[:3]:
        declared = me.post("/api/v1/me/declarations", {"periods": [period], "grade": grade})
        assert declared.status_code == 201, declared.text
        declarations.append(declared.json())

    def order_and_pay(plan_ids):
        order = me.post("/api/v1/orders", {"plan_ids": plan_ids})
        assert order.status_code == 201, order.text
        payment = me.post(f"/api/v1/orders/{order.json()['order_id']}/payments", {"channel": "unionpay"})
        assert payment.status_code == 201, payment.text
        return order.json()["order_id"], payment.json()["payment_id"]

    paid_order, paid_payment = order_and_pay(declarations[0]["plan_ids"])
    assert requests.post(f"{stack.sim_url}/sim/channels/unionpay/transactions/{paid_payment}",
                         json={"result": "success"}, timeout=10).status_code == 200
    assert wait_for(lambda: me.get(f"/api/v1/orders/{paid_order}").json()["status"] == "paid")
    day = OPEN_TIME.date().isoformat()
    records = wait_for(lambda: me.get(f"/api/v1/me/certificates/records?paid_from={day}&paid_to={day}"
                                      ).json()["records"])
    assert records
    certificate = me.post("/api/v1/me/certificates", {"kind": "payment", "paid_from": day, "paid_to": day})
    assert certificate.status_code == 200, certificate.text
    # a pending order without a payment: nothing of the channel's moves it while the tests run
    pending = me.post("/api/v1/orders", {"plan_ids": declarations[1]["plan_ids"]})
    assert pending.status_code == 201, pending.text
    pending_order = pending.json()["order_id"]
    return {"payer": payer, "me": me, "day": day, "periods": periods[:3], "paid_order": paid_order, "paid_payment": paid_payment,
            "pending_order": pending_order,
            "paid_declaration": declarations[0]["declaration_id"],
            "open_declaration": declarations[1]["declaration_id"],
            "voidable_declaration": declarations[2]["declaration_id"],
            "voidable_plan_ids": declarations[2]["plan_ids"], "record_ids": [r["record_id"] for r in records],
            "certificate_code": certificate.headers["X-Certificate-Code"]}


@pytest.fixture(scope="module")
def attacker(stack, sec_sims):
    """Another payer (same insurance type, with a payable plan of their own), logged in through the API."""
    api = Api(stack.gateway_url)
    id_number = new_id_number()
    sec_sims.enroll(id_number, "冯他人", "FE_PENSION", enrolled_on="2020-01-01")
    add_bureau_plan(sec_sims, f"HR-SEC-{id_number}-2026-01", id_number, "FE_PENSION", "2026-01", "350.00")
    sync_bureaus(sec_sims)
    return register_and_login(api, sec_sims, "冯他人", id_number=id_number, enroll=False)
