"""The pay flow in one process: identity, orders, payment_gateway and the gateway in Nameko containers on the
real broker (a vhost of this module's own) and database, the simulators (bureaus, SMS, UnionPay) in-process, and
a small fake plans service that honours the plans contract (payable_plans, lock_plans, enrollment, order.paid /
order.released) so orders can be tested before and independently of the real plans service."""
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import eventlet
import pytest
import requests
from nameko.containers import ServiceContainer
from nameko.events import event_handler
from nameko.standalone.rpc import ServiceRpcProxy

from servicekit.clock import SHANGHAI
from servicekit.entrypoints import rpc
from servicekit.errors import AppError
from tests.support.http import Api, Simulators
from tests.support.infra import _management
from tests.support.people import new_id_number, new_phone

PASSWORD = "secret123"
def future_open_time():
    """The 10th, 10:00 Shanghai, of next month: inside the collection window, and in the future, so the database's
    TTL indexes (which run on real time) never purge the codes and sessions the shifted services write."""
    now = datetime.now(SHANGHAI)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 10, 10, 0, tzinfo=SHANGHAI)


OPEN_TIME = future_open_time()


class FakePlans:
    """The plans contract, in memory. Module-level state: tests add plans with ``FakePlans.add``."""
    name = "plans"
    plans = {}  # plan_id -> plan
    enrolled = {}  # (id_number, type) -> {"region_code", "name"}
    events = []  # (event_type, payload) received

    @classmethod
    def enroll(cls, id_number, name, insurance_type, region="230102"):
        cls.enrolled[(id_number, insurance_type)] = {"region_code": region, "name": name}

    @classmethod
    def add(cls, id_number, insurance_type, periods, amount_fen=35000):
        ids = []
        for period in periods:
            plan_id = uuid.uuid4().hex[:12]
            cls.plans[plan_id] = {"plan_id": plan_id, "id_number": id_number, "insurance_type": insurance_type,
                                  "period": period, "amount_fen": amount_fen, "status": "unpaid", "order_id": None,
                                  "deadline": "2026-03-25T17:00:00+08:00", "tax_ticket_no": None}
            ids.append(plan_id)
        return ids

    @staticmethod
    def public(plan):
        return {k: plan[k] for k in ("plan_id", "period", "amount_fen", "deadline", "status", "order_id")}

    @rpc()
    def ping(self):
        return {"service": "plans", "ok": True}

    @rpc()
    def enrollment(self, id_number, insurance_type):
        found = self.enrolled.get((id_number, insurance_type))
        if found is None:
            raise AppError("NOT_FOUND")
        return {"region_code": found["region_code"], "insurance_type": insurance_type, "status": "active"}

    @rpc()
    def enrollments(self, id_number):
        """The tax registry's view (identity verifies FE/RR pension enrolments with it)."""
        return [{"id_number": number, "name": e["name"], "insurance_type": kind, "region_code": e["region_code"],
                 "status": "active"} for (number, kind), e in self.enrolled.items() if number == id_number]

    @rpc()
    def payable_plans(self, id_number, insurance_type):
        found = [p for p in self.plans.values() if p["id_number"] == id_number
                 and p["insurance_type"] == insurance_type and p["status"] in ("unpaid", "locked")]
        return [self.public(p) for p in sorted(found, key=lambda p: p["period"])]

    @rpc()
    def lock_plans(self, order_id, id_number, insurance_type, plan_ids):
        # No green-thread switch between the check and the update: all-or-nothing under concurrency.
        chosen = [self.plans.get(i) for i in plan_ids]
        if any(p is None or p["id_number"] != id_number or p["insurance_type"] != insurance_type for p in chosen):
            raise AppError("NOT_FOUND")
        if any(p["status"] != "unpaid" and p["order_id"] != order_id for p in chosen):
            raise AppError("PLAN_LOCKED")
        for p in chosen:
            p.update(status="locked", order_id=order_id)
        return [self.public(p) for p in chosen]

    @event_handler("orders", "order.paid")
    def on_paid(self, event):
        self.events.append(("order.paid", event))
        for record in event["records"]:
            plan = self.plans[record["plan_id"]]
            if plan["order_id"] == event["order_id"]:
                plan.update(status="paid", tax_ticket_no=record["tax_ticket_no"])

    @event_handler("orders", "order.released")
    def on_released(self, event):
        self.events.append(("order.released", event))
        for plan_id in event["plan_ids"]:
            plan = self.plans[plan_id]
            if plan["status"] == "locked" and plan["order_id"] == event["order_id"]:
                plan.update(status="unpaid", order_id=None)


@pytest.fixture(scope="module")
def module_broker_uri(broker_base_uri):
    """A vhost for this module alone: no queue or event of another test module (or the e2e stack) mixes in."""
    base, api_port = broker_base_uri
    api, auth, parsed = _management(base, api_port)
    vhost = f"sitax-payflow-{uuid.uuid4().hex[:8]}"
    requests.put(f"{api}/vhosts/{quote(vhost, safe='')}", auth=auth, timeout=10).raise_for_status()
    requests.put(f"{api}/permissions/{quote(vhost, safe='')}/{parsed.username or 'guest'}", auth=auth,
                 json={"configure": ".*", "write": ".*", "read": ".*"}, timeout=10).raise_for_status()
    yield f"pyamqp://{parsed.netloc}/{quote(vhost, safe='')}", (api, auth, vhost)
    requests.delete(f"{api}/vhosts/{quote(vhost, safe='')}", auth=auth, timeout=30)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def payflow(service_config, module_broker_uri, simulators):
    from gateway.service import GatewayService
    from identity.service import IdentityService
    from orders.service import OrdersService
    from payment_gateway.service import PaymentGatewayService

    amqp_uri, management = module_broker_uri
    port = _free_port()
    config = {**service_config, "AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
              "CLIENT_RATE_LIMIT_PER_MINUTE": 100000,
              "UNIONPAY_BASE_URL": f"{simulators}/sim/channels/unionpay",
              "PAYMENT_NOTIFY_BASE_URL": f"http://127.0.0.1:{port}",
              "PAYMENT_QUERY_BACKOFF": "0.3,0.3,0.3", "PAYMENT_UNKNOWN_POLL_SECONDS": 3600,
              "EVENT_RETRY_BACKOFF": "0.1,0.1"}
    FakePlans.plans.clear()
    FakePlans.enrolled.clear()
    FakePlans.events.clear()
    containers = [ServiceContainer(cls, config) for cls in
                  (IdentityService, FakePlans, OrdersService, PaymentGatewayService, GatewayService)]
    for container in containers:
        container.start()
    harness = Payflow(f"http://127.0.0.1:{port}", simulators, config, management)
    yield harness
    for container in reversed(containers):
        container.stop()


class Payflow:
    def __init__(self, gateway_url, sim_url, config, management):
        self.gateway_url, self.sim_url, self.config, self.management = gateway_url, sim_url, config, management
        self.sims = Simulators(sim_url)
        self.http = requests.Session()

    # ---- payers ---------------------------------------------------------------------------------
    def payer(self, insurance_type="FE_PENSION", periods=("2026-01", "2026-02", "2026-03"), amount_fen=35000,
              region="230102"):
        """A registered, logged-in payer with unpaid plans; returns (Api with token, plan ids)."""
        id_number, name, phone = new_id_number(), "孙缴费", new_phone()
        self.sims.enroll(id_number, name, insurance_type, region)
        FakePlans.enroll(id_number, name, insurance_type, region)
        api = Api(self.gateway_url)
        assert api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "register"}).status_code == 202
        code = self.sims.latest_sms_code(phone)
        registered = api.post("/api/v1/payers", {"id_number": id_number, "name": name, "phone": phone,
                                                 "password": PASSWORD, "sms_code": code})
        assert registered.status_code == 201, registered.text
        self.clock_shift(seconds=61)  # the login code may be sent 60 s after the register code
        assert api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "login"}).status_code == 202
        session = api.post("/api/v1/sessions", {"id_number": id_number, "name": name, "password": PASSWORD,
                                                "insurance_type": insurance_type,
                                                "sms_code": self.sims.latest_sms_code(phone)})
        assert session.status_code == 201, session.text
        api.token = session.json()["token"]
        api.id_number, api.payer_id = id_number, session.json()["payer"]["payer_id"]
        plan_ids = FakePlans.add(id_number, insurance_type, periods, amount_fen)
        return api, plan_ids

    # ---- time -------------------------------------------------------------------------------------
    _now = None

    def set_clock(self, now):
        type(self)._now = now
        self.sims.set_clock(now)

    def clock_shift(self, **kwargs):
        self.set_clock((self._now or OPEN_TIME) + timedelta(**kwargs))

    # ---- the channel ------------------------------------------------------------------------------
    def bank(self, payment_id, result, **extra):
        answer = self.http.post(f"{self.sim_url}/sim/channels/unionpay/transactions/{payment_id}",
                                json={"result": result, **extra}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def channel_txn(self, payment_id):
        return self.http.get(f"{self.sim_url}/sim/channels/unionpay/transactions/{payment_id}", timeout=10).json()

    def notify(self, fields, as_json=False):
        url = f"{self.gateway_url}/api/v1/notify/unionpay"
        return self.http.post(url, json=fields, timeout=30) if as_json else self.http.post(url, data=fields,
                                                                                           timeout=30)

    # ---- waiting on outcomes ----------------------------------------------------------------------
    def wait_order(self, api, order_id, statuses, timeout=20):
        deadline = eventlet.hubs.get_hub().clock() + timeout
        while True:
            order = api.get(f"/api/v1/orders/{order_id}").json()
            if order.get("status") in statuses:
                return order
            if eventlet.hubs.get_hub().clock() > deadline:
                raise AssertionError(f"order stayed {order.get('status')}, wanted {statuses}")
            eventlet.sleep(0.1)

    def rpc(self, service):
        return ServiceRpcProxy(service, self.config, timeout=30)

    def queue_depth(self, name):
        api, auth, vhost = self.management
        answer = requests.get(f"{api}/queues/{quote(vhost, safe='')}/{quote(name, safe='')}", auth=auth, timeout=10)
        return answer.json().get("messages", 0) if answer.status_code == 200 else None


@pytest.fixture
def flow(payflow):
    """The pay flow at a fixed time inside the collection window; real time again afterwards."""
    payflow.set_clock(OPEN_TIME)
    yield payflow
    payflow.sims.reset_clock()
    type(payflow)._now = None


def wait_until(predicate, timeout=15, what="condition"):
    deadline = datetime.now(timezone.utc) + timedelta(seconds=timeout)
    while datetime.now(timezone.utc) < deadline:
        value = predicate()
        if value:
            return value
        eventlet.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
