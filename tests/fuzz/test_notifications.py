"""Channel notifications (POST /api/v1/notify/unionpay): forged ones are refused and change nothing; a genuine one
replayed (as a channel retries, or an attacker resends a captured one) answers 200 and changes nothing.

Genuine notifications come from the UnionPay simulator (signed with its dev key, as the channel signs); the
"channel's own" notifications below are signed with that same dev key, which the dev/test configuration trusts.
"""
import time

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings, strategies as st

from simulators.unionpay import DEV_PRIVATE_KEY, acp_sign
from tests.fuzz.conftest import OPEN_TIME
from tests.support.http import Api, add_bureau_plan, error_code, sync_bureaus
from tests.support.payers import register_and_login
from tests.support.people import new_id_number

DAY = OPEN_TIME.date().isoformat()
DEV_KEY = serialization.load_pem_private_key(DEV_PRIVATE_KEY.read_bytes(), None)
ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def notify(stack, fields, as_json=False, raw=None, content_type=None):
    url = f"{stack.gateway_url}/api/v1/notify/unionpay"
    if raw is not None:
        return requests.post(url, data=raw, headers={"Content-Type": content_type or "application/octet-stream"},
                             timeout=30)
    if as_json:
        return requests.post(url, json=fields, timeout=30)
    return requests.post(url, data=fields, timeout=30)  # form-encoded, as ACP sends it


def wait_for(probe, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture(scope="module")
def paid_and_pending(stack, fuzz_sims):
    """A payer with one order paid through the simulator (its genuine notification kept) and one order with an
    open, unsettled payment."""
    api = Api(stack.gateway_url)
    id_number = new_id_number()
    fuzz_sims.enroll(id_number, "吴通知", "FE_PENSION", enrolled_on="2020-01-01")
    for period in ("2026-01", "2026-02"):
        add_bureau_plan(fuzz_sims, f"HR-NT-{id_number}-{period}", id_number, "FE_PENSION", period, "350.00")
    sync_bureaus(fuzz_sims)
    me = register_and_login(api, fuzz_sims, "吴通知", id_number=id_number, enroll=False).api
    plans = me.get("/api/v1/me/plans").json()["plans"]

    def order_and_pay(plan_id):
        order = me.post("/api/v1/orders", {"plan_ids": [plan_id]})
        assert order.status_code == 201, order.text
        payment = me.post(f"/api/v1/orders/{order.json()['order_id']}/payments", {"channel": "unionpay"})
        assert payment.status_code == 201, payment.text
        return order.json()["order_id"], payment.json()["payment_id"]

    paid_order, paid_payment = order_and_pay(plans[0]["plan_id"])
    bank = requests.post(f"{stack.sim_url}/sim/channels/unionpay/transactions/{paid_payment}",
                         json={"result": "success"}, timeout=10)
    assert bank.status_code == 200, bank.text
    assert wait_for(lambda: me.get(f"/api/v1/orders/{paid_order}").json()["status"] == "paid")
    assert wait_for(lambda: me.get("/api/v1/me/records?period_from=2026-01&period_to=2026-12").json()["records"])
    genuine = requests.get(f"{stack.sim_url}/sim/channels/unionpay/transactions/{paid_payment}",
                           timeout=10).json()["notification"]
    pending_order, pending_payment = order_and_pay(plans[1]["plan_id"])
    return {"me": me, "paid": (paid_order, paid_payment), "pending": (pending_order, pending_payment),
            "genuine": genuine}


def state_of(ctx):
    """Everything a payer or ops person would notice: orders, payments, records, plans."""
    me = ctx["me"]
    return {
        "orders": [me.get(f"/api/v1/orders/{ctx[k][0]}").json() for k in ("paid", "pending")],
        "payments": me.get(f"/api/v1/me/payments?paid_from={DAY}&paid_to={DAY}").json(),
        "records": me.get("/api/v1/me/records?period_from=2026-01&period_to=2026-12").json(),
        "plans": me.get("/api/v1/me/plans").json(),
    }


def test_replayed_genuine_notification_answers_200_and_changes_nothing(stack, paid_and_pending):
    before = state_of(paid_and_pending)
    assert before["orders"][0]["status"] == "paid" and before["records"]["count"] == 1
    for as_json in (False, False, True, False, True):
        replayed = notify(stack, paid_and_pending["genuine"], as_json=as_json)
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["result"] == "duplicate", replayed.text
    time.sleep(1)  # anything a replay set off (events, read models) has had time to land
    assert state_of(paid_and_pending) == before


def forgeries(ctx):
    genuine = dict(ctx["genuine"])
    unsigned = {k: v for k, v in genuine.items() if k != "signature"}
    pending_payment = ctx["pending"][1]
    retargeted = {**genuine, "orderId": pending_payment}  # the captured signature on another payment
    return {
        "retargeted to another payment": retargeted,
        "amount changed": {**genuine, "txnAmt": "1"},
        "failure turned success": {**genuine, "respCode": "00", "queryId": "X" + genuine.get("queryId", "")},
        "no signature": {**unsigned, "orderId": pending_payment},
        "empty signature": {**unsigned, "orderId": pending_payment, "signature": ""},
        "signature not base64": {**unsigned, "orderId": pending_payment, "signature": "!!!not-base64!!!"},
        "signed by another key": acp_sign({**unsigned, "orderId": pending_payment}, ATTACKER_KEY),
        "another key with its cert": {**acp_sign({**unsigned, "orderId": pending_payment}, ATTACKER_KEY),
                                      "signPubKeyCert": ATTACKER_KEY.public_key().public_bytes(
                                          serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo).decode()},
        "signature of another message": {**unsigned, "orderId": pending_payment,
                                         "signature": genuine["signature"]},
        "extra field after signing": {**genuine, "txnAmt": genuine["txnAmt"], "reserved": "pay me"},
        "only a signature": {"signature": genuine["signature"]},
    }


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
def test_forged_notifications_are_refused_and_change_nothing(stack, paid_and_pending, as_json):
    before = state_of(paid_and_pending)
    for name, fields in forgeries(paid_and_pending).items():
        refused = notify(stack, fields, as_json=as_json)
        assert refused.status_code == 400 and error_code(refused) == "SIGNATURE_INVALID", (name, refused.text)
    time.sleep(1)
    after = state_of(paid_and_pending)
    assert after == before
    assert after["orders"][1]["status"] in ("pending", "paying")


RAW_BODIES = {
    "empty": (b"", None),
    "deeply nested json": (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
    "json array": (b"[1, 2]", "application/json"),
    "json with numbers": (b'{"orderId": 1, "txnAmt": 35000, "signature": null}', "application/json"),
    "not utf-8": (b"orderId=\xff\xfe&signature=\xfa", "application/x-www-form-urlencoded"),
    "too many fields": ("&".join(f"k{i}=v" for i in range(5000)).encode(), "application/x-www-form-urlencoded"),
    "too large": (b"a=" + b"b" * (70 * 1024), "application/x-www-form-urlencoded"),
    "xml": (b"<xml><orderId>1</orderId></xml>", "text/xml"),
}


@pytest.mark.parametrize("kind", list(RAW_BODIES))
def test_malformed_notifications_are_signature_invalid(stack, kind):
    data, content_type = RAW_BODIES[kind]
    refused = notify(stack, None, raw=data, content_type=content_type)
    assert refused.status_code == 400 and error_code(refused) == "SIGNATURE_INVALID", refused.text


@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(fields=st.dictionaries(st.sampled_from(["orderId", "txnAmt", "respCode", "queryId", "txnTime", "merId",
                                               "signature", "settleDate"]) | st.text(max_size=8),
                              st.text(max_size=40) | st.sampled_from(["00", "35000", "20260310100000"]),
                              max_size=10),
       as_json=st.booleans())
def test_fuzzed_unsigned_notifications_are_refused(stack, fields, as_json):
    refused = notify(stack, fields, as_json=as_json)
    assert refused.status_code == 400 and error_code(refused) == "SIGNATURE_INVALID", (fields, refused.text)


def test_channel_signed_success_is_applied_once_and_replays_change_nothing(stack, paid_and_pending):
    """A notification signed with the channel's (dev) key is trusted: the pending order is paid, once."""
    me, (order_id, payment_id) = paid_and_pending["me"], paid_and_pending["pending"]
    template = {k: v for k, v in paid_and_pending["genuine"].items() if k != "signature"}
    success = acp_sign({**template, "orderId": payment_id, "txnAmt": "35000", "respCode": "00",
                        "queryId": "NT" + payment_id[:18]}, DEV_KEY)
    first = notify(stack, success)
    assert first.status_code == 200 and first.json()["result"] == "succeeded", first.text
    assert wait_for(lambda: me.get(f"/api/v1/orders/{order_id}").json()["status"] == "paid")
    assert wait_for(lambda: me.get("/api/v1/me/records?period_from=2026-01&period_to=2026-12").json()["count"] == 2)
    before = state_of(paid_and_pending)
    for as_json in (False, True):
        again = notify(stack, success, as_json=as_json)
        assert again.status_code == 200 and again.json()["result"] == "duplicate", again.text
    # the channel "succeeds" the same payment again under a new transaction id: flagged for ops, never paid twice
    second_txn = acp_sign({**template, "orderId": payment_id, "txnAmt": "35000", "respCode": "00",
                           "queryId": "NU" + payment_id[:18]}, DEV_KEY)
    flagged = notify(stack, second_txn)
    assert flagged.status_code == 200 and flagged.json()["result"] != "succeeded", flagged.text
    time.sleep(1)
    assert state_of(paid_and_pending) == before
    mine = [p for p in before["payments"]["payments"] if p["payment_id"] == payment_id]
    assert [(p["status"], p["channel_txn_id"]) for p in mine] == [("succeeded", "NT" + payment_id[:18])]
