"""Business metrics on each service's own ops port (stack.ops_ports), after the action that moves them."""
import time
import uuid
from datetime import datetime

import requests
from nameko.standalone.events import event_dispatcher
from prometheus_client.parser import text_string_to_metric_families

from servicekit import dlq
from servicekit.clock import SHANGHAI
from tests.support.payflow import bank, future_open_time, order_and_pay, payer_with_plans, wait_status


def scrape(stack, label):
    text = requests.get(f"http://127.0.0.1:{stack.ops_ports[label]}/metrics", timeout=10).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(stack, label, name, **labels):
    return scrape(stack, label).get((name, tuple(sorted(labels.items()))), 0.0)


def wait_value(stack, label, name, predicate, timeout=20, **labels):
    deadline = time.monotonic() + timeout
    while True:
        current = value(stack, label, name, **labels)
        if predicate(current) or time.monotonic() > deadline:
            return current
        time.sleep(0.3)


def wait_series(stack, label, key, timeout=20):
    deadline = time.monotonic() + timeout
    while key not in (metrics := scrape(stack, label)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return metrics


def test_a_paid_order_shows_in_the_business_metrics(stack, api, sims, clock):
    clock.set(future_open_time())
    paid_before = value(stack, "orders", "sitax_order_transitions_total", state="paid")
    paying_before = value(stack, "orders", "sitax_order_transitions_total", state="paying")
    pay = {result: value(stack, "payment_gateway", "sitax_payments_total", channel="unionpay", result=result)
           for result in ("started", "succeeded")}
    me = payer_with_plans(api, sims, clock)
    order, payment = order_and_pay(me)
    bank(stack.sim_url, payment["payment_id"], "success")
    assert wait_status(me, order["order_id"], {"paid"})["status"] == "paid"

    assert value(stack, "orders", "sitax_order_transitions_total", state="paying") == paying_before + 1
    assert wait_value(stack, "orders", "sitax_order_transitions_total", lambda v: v >= paid_before + 1,
                      state="paid") == paid_before + 1
    # the open-orders gauge and the outbox backlogs come from the databases on timers
    metrics = wait_series(stack, "orders", ("sitax_orders", (("state", "unknown"),)))
    for state in ("pending", "paying", "unknown"):
        assert ("sitax_orders", (("state", state),)) in metrics
    assert wait_value(stack, "orders", "sitax_outbox_backlog", lambda v: v == 0, service="orders") == 0
    assert ("sitax_outbox_backlog", (("service", "orders"),)) in scrape(stack, "orders")
    assert ("sitax_outbox_backlog", (("service", "plans"),)) in wait_series(
        stack, "plans", ("sitax_outbox_backlog", (("service", "plans"),)))
    # payment_gateway: one payment started and succeeded (by notification or status query, counted once)
    assert value(stack, "payment_gateway", "sitax_payments_total", channel="unionpay",
                 result="started") == pay["started"] + 1
    assert wait_value(stack, "payment_gateway", "sitax_payments_total", lambda v: v > pay["succeeded"],
                      channel="unionpay", result="succeeded") == pay["succeeded"] + 1
    assert wait_value(stack, "payment_gateway", "sitax_outbox_backlog", lambda v: v == 0,
                      service="payment_gateway") == 0
    assert ("sitax_outbox_backlog", (("service", "payment_gateway"),)) in scrape(stack, "payment_gateway")


def test_notifications_are_counted_forged_or_valid(stack):
    labels = {"channel": "unionpay", "verdict": "forged"}
    before = value(stack, "payment_gateway", "sitax_payment_notifications_total", **labels)
    answer = requests.post(f"{stack.gateway_url}/api/v1/notify/unionpay", timeout=30,
                           data={"orderId": "nope", "respCode": "00", "txnAmt": "1", "signature": "Zm9yZ2Vk"})
    assert answer.status_code >= 400
    assert value(stack, "payment_gateway", "sitax_payment_notifications_total", **labels) == before + 1


def test_a_dead_letter_is_counted_and_listed(stack):
    labels = {"service": "orders", "event_type": "payment.failed", "reason": "rejected"}
    before = value(stack, "orders", "sitax_dead_letters_total", **labels)
    event_id = f"metrics-{uuid.uuid4().hex}"
    event_dispatcher({"AMQP_URI": stack.amqp_uri})("payment_gateway", "payment.failed", {"event_id": event_id})
    assert wait_value(stack, "orders", "sitax_dead_letters_total", lambda v: v > before, **labels) == before + 1

    class Out(list):
        def write(self, text):
            self.append(text)

    listing = Out()
    assert dlq.main(["--amqp-uri", stack.amqp_uri, "list", "orders"], out=listing) == 0
    line = next(line for line in "".join(listing).splitlines() if event_id in line)
    removed = Out()  # the letter is test debris: discard it, and it is gone
    assert dlq.main(["--amqp-uri", stack.amqp_uri, "discard", "orders", line.split()[1]], out=removed) == 0
    assert event_id in "".join(removed)
    again = Out()
    dlq.main(["--amqp-uri", stack.amqp_uri, "list", "orders"], out=again)
    assert event_id not in "".join(again)


def test_reconciliation_mismatches_are_counted_once_by_category(stack, api, clock):
    """Money the channel took for an orderId we never issued (LOCAL_MISSING), reconciled the next morning."""
    now = datetime.now(SHANGHAI)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    day = datetime(year, month, 23, 10, 0, tzinfo=SHANGHAI)  # a settlement date no other test pays on
    clock.set(day)
    base, stranger = f"{stack.sim_url}/sim/channels/unionpay", uuid.uuid4().hex
    opened = requests.post(f"{base}/gateway/api/appTransReq.do", timeout=10, data={
        "merId": "898230100000001", "orderId": stranger, "txnAmt": "12300", "txnTime": day.strftime("%Y%m%d%H%M%S"),
        "backUrl": f"{stack.gateway_url}/api/v1/notify/unionpay"})
    assert opened.json()["respCode"] == "00", opened.text
    assert requests.post(f"{base}/transactions/{stranger}", json={"result": "success"}, timeout=10).ok

    before = value(stack, "payment_gateway", "sitax_reconciliation_mismatches_total", channel="unionpay",
                   category="LOCAL_MISSING")
    clock.set(day.replace(day=24, hour=8))  # the next morning, before the daily run
    ops = {"Authorization": "Bearer dev-ops-token"}
    started = api.post("/api/v1/ops/reconciliations", {"channel": "unionpay", "date": day.date().isoformat()},
                       headers=ops)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 60
    while (report := api.get(f"/api/v1/ops/reconciliations/{started.json()['reconciliation_id']}",
                             headers=ops).json())["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert report["status"] == "completed", report
    missing = [m for m in report["mismatches"] if m["category"] == "LOCAL_MISSING"]
    assert stranger in {m["payment_id"] for m in missing}
    assert value(stack, "payment_gateway", "sitax_reconciliation_mismatches_total", channel="unionpay",
                 category="LOCAL_MISSING") == before + len(missing)
