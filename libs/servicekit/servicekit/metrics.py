"""Business metrics of every service, in one place (``servicekit.runtime`` has the per-entrypoint ones).

Counters count in the process that saw the fact: sum them over instances (``sum by (...) (rate(...))``).
Gauges read from a service's own database are the same in every instance of that service: aggregate them
with ``max by (...)``, never ``sum``.

Orders by state: a gauge of the OPEN states (pending, paying, unknown) read from the orders database on a
timer, plus a counter of transitions into every state. Open orders are few and their count is what ops
alert on (payments stuck in paying/unknown at month-end); counting the ever-growing terminal states on a
timer would scan millions of index keys for a number ``increase(sitax_order_transitions_total[..])`` gives.
"""
import logging

import prometheus_client as prom

log = logging.getLogger(__name__)

ORDERS = prom.Gauge(
    "sitax_orders", "Orders in an open state now, from the orders database (max over instances)", ["state"])
ORDER_TRANSITIONS = prom.Counter(
    "sitax_order_transitions_total", "Order state changes made, by the state entered", ["state"])
PAYMENTS = prom.Counter(
    "sitax_payments_total", "Payments by channel and result (started, succeeded, failed, unknown)",
    ["channel", "result"])
NOTIFICATIONS = prom.Counter(
    "sitax_payment_notifications_total", "Channel notifications: valid, duplicate or forged (bad signature)",
    ["channel", "verdict"])
RECONCILIATION_MISMATCHES = prom.Counter(
    "sitax_reconciliation_mismatches_total", "Reconciliation mismatches found, by channel and category",
    ["channel", "category"])
OUTBOX_BACKLOG = prom.Gauge(
    "sitax_outbox_backlog", "Outbox entries not yet published (max over instances)", ["service"])
DEAD_LETTERS = prom.Counter(
    "sitax_dead_letters_total", "Event messages moved to dlq.<service>, by reason (retries_exhausted, rejected)",
    ["service", "event_type", "reason"])

BUSINESS = (ORDERS, ORDER_TRANSITIONS, PAYMENTS, NOTIFICATIONS, RECONCILIATION_MISMATCHES, OUTBOX_BACKLOG,
            DEAD_LETTERS)
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def series_names():
    """Every series name the services expose (these and servicekit.runtime's): what a dashboard may query."""
    from servicekit import runtime

    names = set()
    for metric in BUSINESS + (runtime.ENTRYPOINT_SECONDS, runtime.ENTRYPOINT_RESULTS):
        for family in metric.describe():
            names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
    return names


def refresh_outbox_backlog(service_name, db):
    """Called from a service timer; a failed count leaves the last value (the DB may be away for a moment)."""
    from servicekit.events import Outbox

    try:
        OUTBOX_BACKLOG.labels(service_name).set(Outbox(db).backlog())
    except Exception as exc:  # never let a metric take a timer worker down
        log.warning("outbox backlog not measured: %s", type(exc).__name__)
