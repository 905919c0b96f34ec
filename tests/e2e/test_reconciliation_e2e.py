"""Next-day reconciliation through the whole stack: a day of payments with the UnionPay simulator as channel and
payer's bank, the next morning's run through the ops API, what the report says and what the payers then see."""
import time
import uuid
from datetime import datetime

import pytest
import requests

from servicekit.clock import SHANGHAI
from tests.support.http import Api, add_bureau_plan, error_code, sync_bureaus
from tests.support.people import new_id_number, new_phone

OPS = {"Authorization": "Bearer dev-ops-token"}
PASSWORD = "pass1234word"


def _day():
    """The 20th of next month: inside the collection window, in the future (TTL indexes run on real time), and a
    settlement date no other test pays on, so the day's file holds this test's payments only."""
    now = datetime.now(SHANGHAI)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 20, 10, 0, tzinfo=SHANGHAI)


DAY = _day()


class Payer:
    def __init__(self, api, sims, clock, period="2026-01"):
        self.base, self.sims = api.base_url, sims
        self.id_number, self.name, self.phone = new_id_number(), "对账人", new_phone()
        sims.enroll(self.id_number, self.name, "FE_PENSION", enrolled_on="2020-01-01")
        add_bureau_plan(sims, f"HR-{self.id_number}-{period}", self.id_number, "FE_PENSION", period, "350.00")
        sync_bureaus(sims)
        api.post("/api/v1/sms-codes", {"phone": self.phone, "purpose": "register"})
        created = api.post("/api/v1/payers", {"id_number": self.id_number, "name": self.name, "phone": self.phone,
                                              "password": PASSWORD, "sms_code": sims.latest_sms_code(self.phone)})
        assert created.status_code == 201, created.text
        clock.advance(seconds=61)
        self.login()

    def login(self):
        """Tokens last 30 minutes of service time: the next morning the payer logs in again."""
        api = Api(self.base)
        assert api.post("/api/v1/sms-codes", {"phone": self.phone, "purpose": "login"}).status_code == 202
        answer = api.post("/api/v1/sessions", {"id_number": self.id_number, "name": self.name, "password": PASSWORD,
                                               "insurance_type": "FE_PENSION",
                                               "sms_code": self.sims.latest_sms_code(self.phone)})
        assert answer.status_code == 201, answer.text
        self.api = Api(self.base, answer.json()["token"])

    def order_and_pay(self):
        order = self.api.post("/api/v1/orders", {})
        assert order.status_code == 201, order.text
        payment = self.api.post(f"/api/v1/orders/{order.json()['order_id']}/payments", {"channel": "unionpay"})
        assert payment.status_code == 201, payment.text
        self.order_id, self.payment_id = order.json()["order_id"], payment.json()["payment_id"]
        return self

    def order(self):
        return self.api.get(f"/api/v1/orders/{self.order_id}").json()

    def wait(self, wanted, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            order = self.order()
            if order.get("status") in wanted or time.monotonic() > deadline:
                return order
            time.sleep(0.2)


def bank(stack, payment_id, result, **extra):
    answer = requests.post(f"{stack.sim_url}/sim/channels/unionpay/transactions/{payment_id}",
                           json={"result": result, **extra}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def channel_txn(stack, payment_id):
    return requests.get(f"{stack.sim_url}/sim/channels/unionpay/transactions/{payment_id}", timeout=10).json()


def money_taken_for_a_stranger(stack):
    """The channel takes money for an orderId we never issued (LOCAL_MISSING)."""
    base = f"{stack.sim_url}/sim/channels/unionpay"
    order_id = uuid.uuid4().hex
    opened = requests.post(f"{base}/gateway/api/appTransReq.do", timeout=10, data={
        "merId": "898230100000001", "orderId": order_id, "txnAmt": "12300", "txnTime": DAY.strftime("%Y%m%d%H%M%S"),
        "backUrl": f"{stack.gateway_url}/api/v1/notify/unionpay"})
    assert opened.json()["respCode"] == "00", opened.text
    bank(stack, order_id, "success")
    return order_id


def reconcile(api, date, token=OPS):
    started = api.post("/api/v1/ops/reconciliations", {"channel": "unionpay", "date": date}, headers=dict(token))
    assert started.status_code == 202, started.text
    run_id = started.json()["reconciliation_id"]
    return run_id, started


def wait_report(api, run_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        answer = api.get(f"/api/v1/ops/reconciliations/{run_id}", headers=dict(OPS))
        assert answer.status_code == 200, answer.text
        report = answer.json()
        if report["status"] != "running" or time.monotonic() > deadline:
            return report
        time.sleep(0.3)


def by_payment(report, payment_ids):
    return {m["payment_id"]: (m["category"], m["resolution"]) for m in report["mismatches"]
            if m["payment_id"] in payment_ids}


def test_a_day_reconciled_next_morning(stack, api, sims, clock):
    clock.set(DAY)
    normal, limbo, failed, short, double = (Payer(api, sims, clock) for _ in range(5))

    normal.order_and_pay()
    bank(stack, normal.payment_id, "success")
    assert normal.wait({"paid"})["status"] == "paid"

    failed.order_and_pay()
    bank(stack, failed.payment_id, "fail")
    assert failed.wait({"failed"})["status"] == "failed"

    short.order_and_pay()
    bank(stack, short.payment_id, "success", amount="349.00")  # the bank took a different amount
    assert short.wait({"unknown"})["status"] == "unknown"

    double.order_and_pay()
    bank(stack, double.payment_id, "double_charge")  # money taken twice for one order, one notification
    assert double.wait({"paid"})["status"] == "paid"

    limbo.order_and_pay()
    bank(stack, limbo.payment_id, "limbo")  # money taken, no notification, the query answers "processing"
    for _ in range(15):  # walk the status-query back-off (1…32 s of service time) to its end: unknown
        if limbo.order()["status"] == "unknown":
            break
        clock.advance(seconds=40)
        time.sleep(1.0)
    assert limbo.order()["status"] == "unknown"
    assert limbo.api.get("/api/v1/me/plans").json()["plans"][0]["status"] == "locked"

    stranger = money_taken_for_a_stranger(stack)

    # the next morning, before the daily timer (09:00) would run it by itself
    clock.set(DAY.replace(day=DAY.day + 1, hour=8))
    time.sleep(1.5)  # the limbo payment's poll falls due at once and still hears "processing"
    date = DAY.date().isoformat()

    # ops only: a payer's token is refused
    normal.login()
    refused = api.post("/api/v1/ops/reconciliations", {"channel": "unionpay", "date": date},
                       headers={"Authorization": f"Bearer {normal.api.token}"})
    assert refused.status_code == 401 and error_code(refused) == "UNAUTHENTICATED"

    run_id, _ = reconcile(api, date)
    again = api.post("/api/v1/ops/reconciliations", {"channel": "unionpay", "date": date}, headers=dict(OPS))
    assert again.status_code == 409 and error_code(again) == "CONFLICT", again.text
    report = wait_report(api, run_id)
    assert report["status"] == "completed", report

    ours = {normal.payment_id, limbo.payment_id, failed.payment_id, short.payment_id, double.payment_id, stranger}
    listed = by_payment(report, ours)
    assert listed == {
        limbo.payment_id: ("LOCAL_NOT_SUCCESS", "marked_paid"),
        short.payment_id: ("AMOUNT_MISMATCH", "flagged_never_paid"),
        double.payment_id: ("DUPLICATE_PAYMENT", "flagged_refund"),
        stranger: ("LOCAL_MISSING", "flagged_refund"),
    }, report["mismatches"]
    dup = next(m for m in report["mismatches"] if m["payment_id"] == double.payment_id)
    assert dup["channel_txn_id"] != channel_txn(stack, double.payment_id)["queryId"]  # the second charge
    mismatch = next(m for m in report["mismatches"] if m["payment_id"] == short.payment_id)
    assert (mismatch["local_amount"], mismatch["channel_amount"]) == ("350.00", "349.00")
    # normal, failed (a failed line against a failed payment) and the double's first charge agree
    assert report["counts"]["matched"] >= 3
    assert report["counts"]["LOCAL_NOT_SUCCESS"] >= 1 and report["counts"]["DUPLICATE_PAYMENT"] >= 1

    # the payers: money taken without a notification is paid, with the message and the record
    for payer in (limbo, failed, short, double):
        payer.login()
    paid = limbo.wait({"paid"})
    assert paid["status"] == "paid" and paid["message"] == "您已经付款350.00元"
    ticket = paid["records"][0]["tax_ticket_no"]

    def records():
        return limbo.api.get("/api/v1/me/records", params={"period_from": "2026-01", "period_to": "2026-01"}).json()

    deadline = time.monotonic() + 20
    while not records().get("records") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert [(r["period"], r["tax_ticket_no"]) for r in records()["records"]] == [("2026-01", ticket)]
    assert limbo.api.get("/api/v1/me/plans").json()["plans"] == []
    # the first payment failed: the order is failed and the plan payable again
    assert failed.order()["status"] == "failed"
    assert [p["status"] for p in failed.api.get("/api/v1/me/plans").json()["plans"]] == ["unpaid"]
    # an amount that differs is never marked paid
    assert short.order()["status"] == "unknown"
    payments = short.api.get("/api/v1/me/payments", params={"paid_from": date, "paid_to": date}).json()
    assert [p["status"] for p in payments["payments"]] == ["mismatch"]

    # a re-run: what the first settled now counts as matched, the rest stays as it was, nothing changes twice
    rerun_id, _ = reconcile(api, date)
    assert rerun_id != run_id
    rerun = wait_report(api, rerun_id)
    assert rerun["status"] == "completed", rerun
    assert by_payment(rerun, ours) == {k: v for k, v in listed.items() if k != limbo.payment_id}
    assert rerun["counts"]["matched"] == report["counts"]["matched"] + 1
    assert rerun["counts"]["LOCAL_NOT_SUCCESS"] == report["counts"]["LOCAL_NOT_SUCCESS"] - 1
    time.sleep(1.0)
    again_paid = limbo.order()
    assert (again_paid["status"], again_paid["records"][0]["tax_ticket_no"]) == ("paid", ticket)
    assert [r["tax_ticket_no"] for r in records()["records"]] == [ticket]
    assert (short.order()["status"], failed.order()["status"], double.order()["status"]) == \
        ("unknown", "failed", "paid")


def test_a_statement_date_in_the_future_or_an_unknown_channel_is_refused(stack, api):
    answer = api.post("/api/v1/ops/reconciliations", {"channel": "nope", "date": "2999-01-01"}, headers=dict(OPS))
    assert answer.status_code == 400 and error_code(answer) == "VALIDATION_ERROR"
    assert set(answer.json()["error"]["details"]) == {"channel", "date"}
    missing = api.get("/api/v1/ops/reconciliations/does-not-exist", headers=dict(OPS))
    assert missing.status_code == 404 and error_code(missing) == "NOT_FOUND"
    forged = api.get("/api/v1/ops/reconciliations/x", headers={"Authorization": "Bearer dev-ops-tokeN"})
    assert forged.status_code == 401 and error_code(forged) == "UNAUTHENTICATED"


def test_the_console_entry_runs_a_date_over_rpc_and_prints_the_report(stack):
    import subprocess
    import sys
    from datetime import timedelta

    yesterday = (datetime.now(SHANGHAI) - timedelta(days=1)).date().isoformat()
    env = {**stack.env("payment_gateway"), "RECONCILE_PROGRESS": "1"}
    for _ in range(3):  # the daily timer may be reconciling the same date this very moment (exit 2, CONFLICT)
        done = subprocess.run([sys.executable, "-m", "payment_gateway.reconcile_cli", "--date", yesterday,
                               "--channel", "unionpay"], env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 2:
            break
        time.sleep(2)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "status: completed" in done.stdout and "matched" in done.stdout
    assert "lines" in done.stderr  # the progress bar
