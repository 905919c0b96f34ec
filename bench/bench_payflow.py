"""The pay flow through the gateway: login → plans → order → pay → notification → paid.

N payers (``PAYFLOW_BENCH_N``, default 200) each pay one plan at 1, and N others at 16 concurrent clients, against the
whole stack as processes (``devstack``: real plans, orders, payment_gateway, gateway, simulators) on the real
broker (a vhost of its own) and the database. Prints flows per second, p50/p95/p99 of each step, and per flow:
database operations (the server's own opcounters, with the idle background of the services' timers measured
and subtracted) and broker messages (RabbitMQ's published-message count of the vhost). Then a baseline: the same
number of raw pika publish+get round trips and raw pymongo operations, done directly.

"notify→paid" is from the payer's 确认支付 at the channel to the order reading paid (the client polls every
50 ms, as the H5 page does; those polls are part of the counted cost). Measures; never asserts.
"""
import os
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import eventlet
import requests
from pymongo import MongoClient

from devstack.stack import Stack, free_port
from servicekit.clock import SHANGHAI

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("login", "plans", "order", "pay", "notify→paid")
PASSWORD = "bench1234pw"
POLL_SECONDS = 0.05


def start_time():
    """Next month's 2nd, 09:00 Shanghai: inside the collection window and in the future (TTL indexes purge by
    real time, so a clock moved into the past would lose codes and sessions)."""
    now = datetime.now(SHANGHAI)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 2, 9, 0, tzinfo=SHANGHAI)


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def id_number(index):
    from identity.domain import id_check_char

    birth = f"19{80 + index // 1000 % 20}{index // 20000 % 9 + 1:02d}15"
    first17 = f"230102{birth}{index % 1000:03d}"
    return first17 + id_check_char(first17)


class DevClock:
    """The stack's shared clock (PUT /sim/clock), only ever moved forward."""

    def __init__(self, sim):
        self.sim, self.read_at, self.value = sim, None, None

    def set(self, when):
        requests.put(f"{self.sim}/sim/clock", json={"now": when.isoformat()}, timeout=10).raise_for_status()
        self.read_at, self.value = time.monotonic(), when

    def advance(self, **kwargs):
        self.set(self.value + timedelta(seconds=time.monotonic() - self.read_at) + timedelta(**kwargs))


class Broker:
    def __init__(self, base="pyamqp://guest:guest@127.0.0.1:5672/"):
        self.api, self.auth = "http://127.0.0.1:15672/api", ("guest", "guest")
        self.vhost = f"sitax-bench-{uuid.uuid4().hex[:8]}"
        quoted = quote(self.vhost, safe="")
        requests.put(f"{self.api}/vhosts/{quoted}", auth=self.auth, timeout=10).raise_for_status()
        requests.put(f"{self.api}/permissions/{quoted}/guest", auth=self.auth, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        self.uri = f"pyamqp://guest:guest@127.0.0.1:5672/{quoted}"

    def published(self):
        stats = requests.get(f"{self.api}/vhosts/{quote(self.vhost, safe='')}", auth=self.auth,
                             timeout=10).json().get("message_stats", {})
        return stats.get("publish", 0)

    def settled_published(self):
        """The management API refreshes its counters every few seconds: read until two reads agree."""
        previous = None
        while True:
            time.sleep(5.5)
            current = self.published()
            if current == previous:
                return current
            previous = current

    def remove(self):
        requests.delete(f"{self.api}/vhosts/{quote(self.vhost, safe='')}", auth=self.auth, timeout=30)


def db_ops(client):
    counters = client.admin.command("serverStatus")["opcounters"]
    return sum(counters.get(k, 0) for k in ("insert", "query", "update", "delete", "getmore", "command"))


class Payer:
    def __init__(self, index, gateway, sim):
        self.index, self.gateway, self.sim = index, gateway, sim
        self.id_number, self.name, self.phone = id_number(index), "钱压测", f"137{index:08d}"
        self.http = requests.Session()
        self.token = None

    def call(self, method, path, **kwargs):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        answer = self.http.request(method, f"{self.gateway}{path}", headers=headers, timeout=60, **kwargs)
        return answer

    def code(self):
        return self.http.get(f"{self.sim}/sim/sms/{self.phone}/latest", timeout=10).json()["code"]

    def register(self):
        assert self.call("POST", "/api/v1/sms-codes", json={"phone": self.phone, "purpose": "register"}).ok
        answer = self.call("POST", "/api/v1/payers", json={"id_number": self.id_number, "name": self.name,
                                                           "phone": self.phone, "password": PASSWORD,
                                                           "sms_code": self.code()})
        assert answer.status_code == 201, answer.text

    def flow(self):
        """One pay flow; returns {step: seconds}."""
        took = {}
        t0 = time.perf_counter()
        assert self.call("POST", "/api/v1/sms-codes", json={"phone": self.phone, "purpose": "login"}).ok
        login = self.call("POST", "/api/v1/sessions", json={"id_number": self.id_number, "name": self.name,
                                                            "password": PASSWORD, "insurance_type": "FE_PENSION",
                                                            "sms_code": self.code()})
        assert login.status_code == 201, login.text
        self.token = login.json()["token"]
        t1 = time.perf_counter()
        plans = self.call("GET", "/api/v1/me/plans").json()["plans"]
        t2 = time.perf_counter()
        order = self.call("POST", "/api/v1/orders", json={"plan_ids": [plans[0]["plan_id"]]})
        assert order.status_code == 201, order.text
        order_id = order.json()["order_id"]
        t3 = time.perf_counter()
        payment = self.call("POST", f"/api/v1/orders/{order_id}/payments", json={"channel": "unionpay"})
        assert payment.status_code == 201, payment.text
        t4 = time.perf_counter()
        self.http.post(payment.json()["pay_url"], data={"result": "success"}, timeout=30)  # 确认支付
        while self.call("GET", f"/api/v1/orders/{order_id}").json()["status"] != "paid":
            if time.perf_counter() - t4 > 120:
                raise RuntimeError(f"order {order_id} not paid after 120 s")
            eventlet.sleep(POLL_SECONDS)
        t5 = time.perf_counter()
        for step, (a, b) in zip(STEPS, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5))):
            took[step] = b - a
        return took


def run_round(report, payers, concurrency, broker, mongo, background_per_s, label=""):
    ops0, msgs0 = db_ops(mongo), broker.settled_published()
    started = time.perf_counter()
    pool = eventlet.GreenPool(concurrency)
    results = list(pool.imap(lambda p: p.flow(), payers))
    elapsed = time.perf_counter() - started
    ops = db_ops(mongo) - ops0
    msgs = broker.settled_published() - msgs0
    flows = len(results)
    background = background_per_s * elapsed
    report.figure(f"{label}c={concurrency}: flows per second ({flows} flows)", flows / elapsed, "flows/s")
    for step in STEPS:
        values = [r[step] * 1000 for r in results]
        report.figure(f"{label}c={concurrency}: {step} p50 / p95 / p99",
                      f"{percentile(values, 50):.1f} / {percentile(values, 95):.1f} / {percentile(values, 99):.1f}",
                      "ms")
    report.figure(f"{label}c={concurrency}: DB operations per flow (server opcounters, background subtracted)",
                  (ops - background) / flows)
    report.figure(f"{label}c={concurrency}: broker messages published per flow", msgs / flows)
    return (ops - background) / flows, msgs / flows, elapsed / flows


def baseline(report, broker, mongo_uri, flows, ops_per_flow, msgs_per_flow, our_seconds_per_flow):
    import pika

    params = pika.URLParameters(broker.uri.replace("pyamqp://", "amqp://"))
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.confirm_delivery()
    queue = f"bench-baseline-{uuid.uuid4().hex[:6]}"
    channel.queue_declare(queue, durable=True)
    n_msgs = max(1, int(round(flows * msgs_per_flow)))
    started = time.perf_counter()
    for _ in range(n_msgs):
        channel.basic_publish("", queue, b"x" * 300, pika.BasicProperties(delivery_mode=2))
        method, _, _ = channel.basic_get(queue, auto_ack=True)
    pika_seconds = time.perf_counter() - started
    channel.queue_delete(queue)
    connection.close()

    client = MongoClient(mongo_uri, w="majority")
    collection = client[f"bench{uuid.uuid4().hex[:6]}"]["raw"]
    collection.create_index("k")
    n_ops = max(3, int(round(flows * ops_per_flow)))
    started = time.perf_counter()
    for i in range(n_ops // 3):
        collection.insert_one({"_id": i, "k": i, "status": "pending"})
        collection.update_one({"_id": i, "status": "pending"}, {"$set": {"status": "paid"}})
        collection.find_one({"k": i})
    mongo_seconds = time.perf_counter() - started
    client.drop_database(collection.database.name)
    report.figure(f"baseline: {n_msgs} raw pika publish(confirm)+get round trips", pika_seconds, "s")
    report.figure(f"baseline: {n_ops} raw pymongo operations (insert/update/find)", mongo_seconds, "s")
    report.figure("baseline: bare infrastructure time per flow (sequential)", (pika_seconds + mongo_seconds) / flows,
                  "s")
    report.figure("ratio: our sequential flow time / bare infrastructure time",
                  our_seconds_per_flow / ((pika_seconds + mongo_seconds) / flows), "x")


def start_stack(broker, scale=None):
    stack = Stack(run_dir=ROOT / ".run" / "bench-payflow", gateway_port=free_port(), sim_port=free_port(),
                  mongo_uri=os.environ.get("MONGO_URI") or None, amqp_uri=broker.uri,
                  db_prefix=f"bench{uuid.uuid4().hex[:6]}_", scale=scale or {},
                  extra_env={"CLIENT_RATE_LIMIT_PER_MINUTE": "1000000", "LOG_LEVEL": "WARNING"})
    stack.start()
    return stack


def prepare(report, stack, count, label):
    """``count`` payers with one plan each, enrolled, synced and registered; returns them and the idle DB rate."""
    sim = stack.sim_url
    DevClock(sim).set(start_time())
    payers = [Payer(i, stack.gateway_url, sim) for i in range(count)]
    for payer in payers:
        requests.post(f"{sim}/sim/bureaus/hr/enrollments", timeout=10, json={
            "id_number": payer.id_number, "name": payer.name, "insurance_type": "FE_PENSION",
            "region_code": "230102", "enrolled_on": "2020-01-01"}).raise_for_status()
        requests.post(f"{sim}/sim/bureaus/hr/plans", timeout=10, json={
            "plan_id": f"BENCH-{payer.index}-2026-01", "id_number": payer.id_number,
            "insurance_type": "FE_PENSION", "period": "2026-01", "amount": "350.00"}).raise_for_status()
    requests.post(f"{sim}/sim/bureaus/sync", timeout=600).raise_for_status()
    setup = time.perf_counter()
    list(eventlet.GreenPool(4).imap(lambda p: p.register(), payers))
    report.figure(f"{label}setup: {count} payers registered", time.perf_counter() - setup, "s")
    mongo = MongoClient(stack.mongo_uri)
    idle0, t0 = db_ops(mongo), time.perf_counter()
    time.sleep(10)
    background_per_s = (db_ops(mongo) - idle0) / (time.perf_counter() - t0)
    report.figure(f"{label}idle background DB operations (services' timers)", background_per_s, "ops/s")
    return payers, mongo, background_per_s


def run(report):
    n = int(os.environ.get("PAYFLOW_BENCH_N", "200"))
    broker = Broker()
    try:
        stack = start_stack(broker)
        try:
            # one set of payers per round: each payer logs in and pays once
            payers, mongo, background_per_s = prepare(report, stack, 2 * n, "")
            ops1, msgs1, seconds1 = run_round(report, payers[:n], 1, broker, mongo, background_per_s)
            run_round(report, payers[n:], 16, broker, mongo, background_per_s)
            baseline(report, broker, stack.mongo_uri, n, ops1, msgs1, seconds1)
        finally:
            stack.stop()
        # the same flow with two processes each of orders and payment_gateway (competing consumers)
        stack = start_stack(broker, scale={"orders": 2, "payment_gateway": 2})
        try:
            payers, mongo, background_per_s = prepare(report, stack, n, "2x orders+payment_gateway: ")
            run_round(report, payers, 16, broker, mongo, background_per_s, "2x orders+payment_gateway: ")
        finally:
            stack.stop()
    finally:
        broker.remove()
