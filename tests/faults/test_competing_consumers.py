"""Two processes each of orders and payment_gateway on the same queues: the pay flow's work spreads over both,
and no message is handled twice with an effect a payer or ops could see."""
import eventlet
import pytest

from servicekit.clock import SHANGHAI
from tests.support.faults import handled_messages, make_payers
from tests.support.payflow import bank, order_and_pay, wait_status

FLOWS = 16


@pytest.mark.slow
def test_pay_flows_spread_over_two_instances_without_double_effects(scaled_stack, fault_sims, fault_clock):
    payers = make_payers(scaled_stack, fault_sims, FLOWS)
    instances = ("orders", "orders-2", "payment_gateway", "payment_gateway-2")
    before = {label: handled_messages(scaled_stack, label, label.split("-")[0]) for label in instances}

    def pay(me):
        order, payment = order_and_pay(me)
        bank(scaled_stack.sim_url, payment["payment_id"], "success")
        return me, order, payment

    results = list(eventlet.GreenPool(8).imap(pay, payers))
    for me, order, payment in results:
        assert wait_status(me, order["order_id"], {"paid"}, timeout=60)["status"] == "paid"

    spread = {label: handled_messages(scaled_stack, label, label.split("-")[0]) - before[label]
              for label in instances}
    print(f"\nmessages handled per instance over {FLOWS} flows: {spread}")
    assert all(count > 0 for count in spread.values()), spread

    today = fault_clock.now.astimezone(SHANGHAI).date().isoformat()
    tickets = set()
    for me, order, payment in results:
        paid = me.get(f"/api/v1/orders/{order['order_id']}").json()
        assert paid["message"] == f"您已经付款{paid['amount']}元"
        tickets |= {record["tax_ticket_no"] for record in paid["records"]}
        payments = me.get("/api/v1/me/payments", params={"paid_from": today, "paid_to": today}).json()
        # one payment, one success: nothing charged or recorded twice
        assert [p["status"] for p in payments["payments"]] == ["succeeded"], payments
        records = me.get("/api/v1/me/records", params={"period_from": "2026-01", "period_to": "2026-01"}).json()
        assert len(records["records"]) == 1, records
        assert me.get("/api/v1/me/plans").json()["plans"] == []
    assert len(tickets) == FLOWS  # one 电子税票号码 per paid plan, none shared or issued twice
