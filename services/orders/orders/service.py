"""orders: sequential selection, plan locks, the collection window and the order lifecycle.

pending → paying → paid | failed | unknown, pending → expired; unknown → paid | failed. Every transition is a
guarded update; a transition that others react to writes its event to the outbox in the same transaction.
"""
import json
import logging
from datetime import datetime, timedelta

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.rpc import RpcProxy
from nameko.timer import timer

from servicekit import config as cfg
from servicekit.clock import SHANGHAI, Clock
from servicekit.context import RequestContext
from servicekit.entrypoints import rpc
from servicekit.errors import AppError
from servicekit import metrics
from servicekit.events import Outbox, ProcessedEvents, relay_outbox
from servicekit.money import fen_to_str
from servicekit.mongo import MongoDatabase, in_transaction
from servicekit.runtime import ServiceRuntime
from servicekit.pii import pseudonym
from servicekit.reliable import DeadLetters, reliable_event_handler

from orders import domain
from orders.adapters import enrollment_region
from orders.repository import OrderRepository, PlanAlreadyPaid, ensure_indexes
from orders.schemas import PaymentFailed, PaymentSucceeded, PaymentUnknown

log = logging.getLogger(__name__)
CONSUMER = "orders"


def _violation(v: domain.RuleViolation):
    return AppError(v.code, v.message, v.details)


def order_view(order, now=None):
    """The order as its payer may see it (no full ID number)."""
    amount = fen_to_str(order["amount_fen"])
    view = {
        "order_id": order["_id"], "status": order["status"], "amount": amount, "amount_fen": order["amount_fen"],
        "insurance_type": order["insurance_type"], "region_code": order.get("region_code"),
        "plan_ids": order["plan_ids"],
        "records": [{"plan_id": r["plan_id"], "period": r["period"], "amount": fen_to_str(r["amount_fen"]),
                     "amount_fen": r["amount_fen"], **({"tax_ticket_no": r["tax_ticket_no"]}
                                                       if r.get("tax_ticket_no") else {})}
                    for r in order["records"]],
        "created_at": order["created_at"].astimezone(SHANGHAI).isoformat(),
        "expires_at": order["expires_at"].astimezone(SHANGHAI).isoformat(),
        "payment_id": order.get("payment_id"), "channel": order.get("channel"),
        "message": domain.paid_message(amount) if order["status"] == domain.PAID
        else domain.STATUS_MESSAGES[order["status"]],
    }
    if order.get("paid_at"):
        view["paid_at"] = order["paid_at"].astimezone(SHANGHAI).isoformat()
    return view


class OrdersService:
    name = "orders"

    config = Config()
    runtime = ServiceRuntime()
    db = MongoDatabase("orders", ensure_indexes)
    clock = Clock()
    request_id = RequestContext()
    dispatch = EventDispatcher()
    dead_letters = DeadLetters()
    plans_rpc = RpcProxy("plans")

    # ---- settings --------------------------------------------------------------------------
    @property
    def _ttl(self):
        return timedelta(seconds=float(cfg.setting(self.config, "ORDER_TTL_SECONDS", 30 * 60)))

    @property
    def _windows(self):
        value = cfg.setting(self.config, "PAYMENT_WINDOWS", None)
        windows = dict(json.loads(value) if isinstance(value, str) else (value or {}))
        # the same cut-off plans shows as each plan's deadline, unless a default window is configured here
        windows.setdefault("default", {"close_day": cfg.integer(self.config, "COLLECTION_CUTOFF_DAY", 25),
                                       "close_time": f"{cfg.integer(self.config, 'COLLECTION_CUTOFF_HOUR', 17)}:00"})
        return windows

    @property
    def _default_region(self):
        return str(cfg.setting(self.config, "DEFAULT_REGION_CODE", "230100"))

    def _publish(self):
        relay_outbox(Outbox(self.db), self.dispatch, self.clock.now())


    # ---- RPC ---------------------------------------------------------------------------------
    @rpc()
    def ping(self):
        return {"service": self.name, "ok": True}

    @rpc()
    def create_order(self, principal, plan_ids=None):
        """确认: one order (缴费记录) for the first k payable plans; they are locked to it all-or-nothing."""
        now = self.clock.now()
        id_number, insurance_type = principal["id_number"], principal["insurance_type"]
        region = enrollment_region(self.plans_rpc, id_number, insurance_type, self._default_region)
        try:
            domain.check_window(domain.window_for(self._windows, region, insurance_type), now)  # before all else
            payable = self.plans_rpc.payable_plans(id_number, insurance_type)
            chosen = domain.select_plans(payable, plan_ids)
        except domain.RuleViolation as violation:
            raise _violation(violation) from None
        orders = OrderRepository(self.db)
        order_id = orders.new_id()
        # The order exists (unlocked, invisible to expiry's release only in effect) before the lock, so a lock
        # whose answer is lost is still released when the order expires.
        order = orders.insert(order_id, principal, region, chosen, now, self._ttl)
        try:
            self.plans_rpc.lock_plans(order_id, id_number, insurance_type, [p["plan_id"] for p in chosen])
        except AppError:
            orders.discard_unlocked(order_id)  # a definite refusal (PLAN_LOCKED, NOT_FOUND): nothing is held
            raise
        orders.mark_locked(order_id, now)
        metrics.ORDER_TRANSITIONS.labels(domain.PENDING).inc()
        order["locked"] = True
        log.info("order %s created for payer %s: %d plans", order_id, pseudonym(principal["payer_id"]),
                 len(chosen))
        return order_view(order)

    @rpc()
    def get_order(self, order_id, payer_id):
        order = OrderRepository(self.db).for_payer(order_id, payer_id) if isinstance(order_id, str) else None
        if order is None or not order.get("locked"):
            raise AppError("NOT_FOUND", "未找到该缴费记录")
        return order_view(order)

    @rpc()
    def start_payment(self, order_id, payer_id, payment_id, channel):
        """payment_gateway opens a payment: pending → paying, only while the order is unexpired and the window
        is open. One active payment per order: a second one is CONFLICT."""
        now, orders = self.clock.now(), OrderRepository(self.db)
        order = orders.for_payer(order_id, payer_id)
        if order is None or not order.get("locked"):
            raise AppError("NOT_FOUND", "未找到该缴费记录")
        if order["status"] != domain.PENDING and order.get("payment_id") == payment_id:
            return order_view(order)  # a retried call, or the channel's answer got here first
        try:
            domain.check_window(domain.window_for(self._windows, order.get("region_code"),
                                                  order["insurance_type"]), now)
        except domain.RuleViolation as violation:
            raise _violation(violation) from None
        if not orders.start_payment(order_id, payer_id, payment_id, channel, now):
            current = orders.get(order_id)
            if current["status"] != domain.PENDING and current.get("payment_id") == payment_id:
                return order_view(current)
            raise AppError("CONFLICT", _conflict_message(current, now), {"status": current["status"]})
        metrics.ORDER_TRANSITIONS.labels(domain.PAYING).inc()
        return order_view(orders.get(order_id))

    # ---- events from payment_gateway -----------------------------------------------------------
    @reliable_event_handler("payment_gateway", "payment.succeeded")
    def on_payment_succeeded(self, event):
        event = PaymentSucceeded().load(event)
        self._settle_paid(event)
        self._publish()

    @reliable_event_handler("payment_gateway", "payment.failed")
    def on_payment_failed(self, event):
        event = PaymentFailed().load(event)
        self._settle_failed(event)
        self._publish()

    @reliable_event_handler("payment_gateway", "payment.unknown")
    def on_payment_unknown(self, event):
        event = PaymentUnknown().load(event)
        now, orders = self.clock.now(), OrderRepository(self.db)
        processed = ProcessedEvents(self.db, CONSUMER)
        if processed.already_processed(event["event_id"]):
            return
        if orders.move(event["order_id"], domain.UNKNOWN, now, payment_id=event["payment_id"]):
            metrics.ORDER_TRANSITIONS.labels(domain.UNKNOWN).inc()
            log.warning("order %s: payment outcome unknown (%s); plans stay locked", event["order_id"],
                        event["reason"])
        processed.record(event["event_id"], now)

    def _adopt_unstarted_payment(self, orders, order, event, now):
        """The channel's answer for this order's payment arrived before start_payment's write reached the order
        (a payer faster than our RPC, or the write lost with a crashed database). payment_gateway names the
        order, so the order takes the payment (pending → paying) and the answer then applies as usual, instead
        of the money, or the failure, being left unmatched."""
        if order["status"] != domain.PENDING or order.get("payment_id") is not None:
            return order
        if orders.adopt_payment(order["_id"], event["payment_id"], event["channel"], now):
            metrics.ORDER_TRANSITIONS.labels(domain.PAYING).inc()
            log.warning("order %s adopted payment %s answered before start_payment", order["_id"],
                        event["payment_id"])
        return orders.get(order["_id"])

    def _settle_paid(self, event):
        now, orders = self.clock.now(), OrderRepository(self.db)
        processed = ProcessedEvents(self.db, CONSUMER)
        if processed.already_processed(event["event_id"]):
            return
        order = orders.get(event["order_id"])
        if order is None:
            raise LookupError(f"payment.succeeded for unknown order {event['order_id']}")  # → retries, then DLQ
        if event["amount_fen"] == order["amount_fen"]:  # money of another amount is never adopted: flagged below
            order = self._adopt_unstarted_payment(orders, order, event, now)
        if order["status"] not in domain.sources_for(domain.PAID) or order.get("payment_id") != event["payment_id"]:
            if order["status"] != domain.PAID:
                # Money arrived for an order that ended otherwise (or another payment): reconciliation's
                # DUPLICATE_PAYMENT / refund path; never silently ignored.
                log.error("order %s is %s but payment %s succeeded: flagged for ops", order["_id"],
                          order["status"], event["payment_id"])
                orders.orders.update_one({"_id": order["_id"]}, {"$addToSet": {"late_payments": event["payment_id"]}})
            processed.record(event["event_id"], now)
            return
        day = now.astimezone(SHANGHAI).strftime("%y%m%d")
        sequences = orders.next_ticket_sequences(day, len(order["records"]))
        records = [{**r, "tax_ticket_no": domain.tax_ticket_no(now, seq)}
                   for r, seq in zip(order["records"], sequences)]
        paid_at = event["paid_at"]
        paid_at_dt = datetime.fromisoformat(paid_at)

        def paid(session):
            if not processed.record(event["event_id"], now, session=session):
                session.abort_transaction()  # aborted by the duplicate key already; committing would retry forever
                return False
            if not orders.move(order["_id"], domain.PAID, now, session=session, payment_id=event["payment_id"],
                               extra={"records": records, "paid_at": paid_at_dt,
                                      "channel_txn_id": event["channel_txn_id"], "channel": event["channel"]}):
                return False  # another worker got there first: its transaction carries the event
            orders.record_tickets(order["_id"], records, session)
            Outbox(self.db).add("order.paid", {
                "order_id": order["_id"],
                "payer": {"payer_id": order["payer_id"], "id_number": order["id_number"], "name": order["name"]},
                "insurance_type": order["insurance_type"], "amount_fen": order["amount_fen"],
                "paid_at": paid_at, "payment_id": event["payment_id"], "channel": event["channel"],
                "channel_txn_id": event["channel_txn_id"],
                "records": [{"plan_id": r["plan_id"], "period": r["period"], "amount_fen": r["amount_fen"],
                             "tax_ticket_no": r["tax_ticket_no"]} for r in records],
            }, now, session=session)
            return True

        try:
            if in_transaction(self.db, paid):  # counted after the commit: an aborted attempt changed nothing
                metrics.ORDER_TRANSITIONS.labels(domain.PAID).inc()
                log.info("order %s paid (%s)", order["_id"], fen_to_str(order["amount_fen"]))
        except PlanAlreadyPaid:
            log.error("order %s: a plan already has a tax ticket from another order; flagged for ops", order["_id"])
            orders.orders.update_one({"_id": order["_id"]}, {"$addToSet": {"late_payments": event["payment_id"]}})
            processed.record(event["event_id"], now)

    def _settle_failed(self, event):
        now, orders = self.clock.now(), OrderRepository(self.db)
        processed = ProcessedEvents(self.db, CONSUMER)
        if processed.already_processed(event["event_id"]):
            return
        order = orders.get(event["order_id"])
        if order is None:
            raise LookupError(f"payment.failed for unknown order {event['order_id']}")
        order = self._adopt_unstarted_payment(orders, order, event, now)

        def failed(session):
            if not processed.record(event["event_id"], now, session=session):
                session.abort_transaction()  # aborted by the duplicate key already; committing would retry forever
                return False
            if not orders.move(order["_id"], domain.FAILED, now, session=session, payment_id=event["payment_id"],
                               extra={"failure_reason": event["reason"]}):
                return False
            Outbox(self.db).add("order.released", {"order_id": order["_id"], "plan_ids": order["plan_ids"],
                                                   "reason": "failed"}, now, session=session)
            return True

        if in_transaction(self.db, failed):
            metrics.ORDER_TRANSITIONS.labels(domain.FAILED).inc()
            log.info("order %s failed (%s); plans released", order["_id"], event["reason"])

    # ---- timers ----------------------------------------------------------------------------------
    @timer(interval=1)
    def expire_orders(self):
        """Unpaid orders past their time release their plans; an order with a payment (paying, unknown) is
        not pending, so it never expires here."""
        now, orders = self.clock.now(), OrderRepository(self.db)
        expired = 0
        for due in orders.due_for_expiry(now):
            def expire(session, due=due):
                if not orders.move(due["_id"], domain.EXPIRED, now, session=session):
                    return False
                Outbox(self.db).add("order.released", {"order_id": due["_id"], "plan_ids": due["plan_ids"],
                                                       "reason": "expired"}, now, session=session)
                return True

            expired += bool(in_transaction(self.db, expire))
        if expired:
            metrics.ORDER_TRANSITIONS.labels(domain.EXPIRED).inc(expired)
            log.info("%d orders expired", expired)
            self._publish()

    @timer(interval=2)
    def relay_events(self):
        self._publish()

    @timer(interval=5)
    def measure(self):
        """Gauges from the database: open orders by state (see servicekit.metrics) and the outbox backlog."""
        try:
            for state, count in OrderRepository(self.db).count_open_by_state().items():
                metrics.ORDERS.labels(state).set(count)
        except Exception as exc:  # a metric never takes a worker down; the last value stays
            log.warning("open orders not measured: %s", type(exc).__name__)
        metrics.refresh_outbox_backlog(self.name, self.db)


def _conflict_message(order, now):
    status = order["status"]
    if status == domain.PENDING and order["expires_at"] <= now:
        return "缴费记录已超时失效，请重新选择缴费计划缴费"
    return {
        domain.PAYING: "该缴费记录正在支付中，请勿重复支付",
        domain.UNKNOWN: "该缴费记录的支付结果确认中，请勿重复支付",
        domain.PAID: "该缴费记录已缴费",
        domain.FAILED: "该缴费记录支付未成功，请重新选择缴费计划缴费",
        domain.EXPIRED: "缴费记录已超时失效，请重新选择缴费计划缴费",
    }.get(status, "当前状态不允许此操作")
