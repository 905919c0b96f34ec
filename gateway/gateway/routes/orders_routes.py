"""选择计划 → 确认 (an order, 缴费记录), and what became of it."""
from gateway import orders_schemas as s
from gateway.http import call, endpoint


def order_principal(principal):
    """What orders needs of the session: who pays, for which type (the full ID stays inside the services)."""
    return {k: principal[k] for k in ("payer_id", "id_number", "name", "insurance_type")}


class OrdersRoutes:
    @endpoint("POST", "/api/v1/orders", summary="Create an order for the selected plans (确认)", tag="orders",
              body=s.CreateOrderRequest(), response=s.OrderResponse(), status=201,
              errors=("PAYMENT_WINDOW_CLOSED", "NO_PAYABLE_PLAN", "PLAN_SEQUENCE_VIOLATION", "PLAN_LOCKED",
                      "SERVICE_UNAVAILABLE"),
              description="Only the first k payable plans, oldest period first, may be selected (default all). "
                          "The plans are locked to the order until it is paid, fails or expires (30 minutes "
                          "unpaid). Outside the collection window (from 17:00 on the 25th until month end, "
                          "Asia/Shanghai) the answer is PAYMENT_WINDOW_CLOSED, before anything else is checked.")
    def create_order(self, request, principal, body):
        return call(self.orders_rpc.create_order, order_principal(principal), body.get("plan_ids"))

    @endpoint("GET", "/api/v1/orders/{order_id}", summary="An order and its status", tag="orders",
              response=s.OrderResponse(), errors=("NOT_FOUND",),
              description="Status pending, paying, paid, failed, expired or unknown; when paid, message is "
                          "您已经付款{amount}元. Another payer's order is NOT_FOUND.")
    def get_order(self, request, principal, order_id):
        return call(self.orders_rpc.get_order, order_id, principal["payer_id"])
