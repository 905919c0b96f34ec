"""HR bureau (人社) and medical bureau (医保) simulators: 参保登记 and 缴费计划 held the way the bureaus hold them.

The project reaches them through its adapters, as it would the bureaus' real data-exchange interfaces:
- ``GET .../enrollments?id_number=``: the live enrolments of one ID;
- ``GET .../feed?cursor=&limit=``: every change (enrolment added, plan added/revised/withdrawn) after a cursor, in
  pages of at most 1000, with ``next_cursor`` and ``has_more`` (an append-only change log, like a CDC feed);
- ``POST .../declarations`` / ``DELETE .../declarations/{id}`` (HR only): 牡丹江 缴费申报, confirmed (核定) at once
  with one plan per period; 申报作废 withdraws them.
Tests and the demo loader add data with ``POST .../enrollments`` and ``POST .../plans`` (same plan_id = revision),
withdraw with ``DELETE .../plans/{plan_id}``, and make a bureau misbehave with ``PUT .../fault {mode}``
(``none``, ``error``: 500 on every data-exchange call, ``garbage``: 200 with a body that is not the contract).
``POST /sim/bureaus/sync`` asks the project to sync now and answers once it has been applied.
"""
import itertools
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from werkzeug.wrappers import Response

from simulators.web import BadInput, fail, json_body, reply, require

BUREAU_TYPES = {"hr": {"FE_PENSION", "FE_MEDICAL", "RR_PENSION"}, "medical": {"RR_MEDICAL"}}
STATUSES = {"active", "suspended", "terminated"}
FAULT_MODES = {"none", "error", "garbage"}
MAX_PAGE = 1000


def _amount(value, field="amount"):
    """"350.00" (or 350 / 350.5): the bureau's two-decimal amount."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise BadInput("bad amount", {field: ["an amount such as 350.00"]}) from None
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")) or isinstance(value, bool):
        raise BadInput("bad amount", {field: ["a positive amount with at most two decimals"]})
    return f"{amount:.2f}"


def _period(value):
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise BadInput("bad period", {"period": ["YYYY-MM"]})
    return value


def _deadline(value):
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadInput("bad deadline", {"deadline": ["ISO 8601 with offset"]}) from None
    if parsed.tzinfo is None:
        raise BadInput("bad deadline", {"deadline": ["ISO 8601 with offset"]})
    return parsed.isoformat()


class Bureau:
    def __init__(self, code):
        self.code = code
        self.enrollments = {}  # (id_number, insurance_type) -> enrolment
        self.plans = {}  # plan_id -> plan (withdrawn ones stay, flagged)
        self.log = []  # change log: {"seq", "kind", "op", "data"}; seq = index + 1
        self.declarations = {}
        self.fault = "none"
        self._seq = itertools.count(1)

    # ---- data the tests and the demo put in ------------------------------------------------------
    def _record(self, kind, op, data):
        self.log.append({"seq": next(self._seq), "kind": kind, "op": op, "data": dict(data)})

    def add_enrollment(self, request):
        data = json_body(request)
        id_number, name, insurance_type, region_code = require(data, "id_number", "name", "insurance_type",
                                                                "region_code")
        if not re.fullmatch(r"\d{17}[\dX]", id_number):
            raise BadInput("bad id_number", {"id_number": ["18 characters, upper-case X"]})
        self._check_type(insurance_type)
        if not re.fullmatch(r"\d{6}", region_code):
            raise BadInput("bad region_code", {"region_code": ["6 digits"]})
        status = data.get("status", "active")
        if status not in STATUSES:
            raise BadInput("bad status", {"status": [f"one of {sorted(STATUSES)}"]})
        enrollment = {"id_number": id_number, "name": name, "insurance_type": insurance_type,
                      "region_code": region_code, "status": status, "enrolled_on": data.get("enrolled_on")}
        self.enrollments[(id_number, insurance_type)] = enrollment
        self._record("enrollment", "upsert", enrollment)
        return reply(enrollment, 201)

    def _check_type(self, insurance_type):
        if insurance_type not in BUREAU_TYPES[self.code]:
            raise BadInput("this bureau does not hold that insurance type",
                           {"insurance_type": [f"one of {sorted(BUREAU_TYPES[self.code])}"]})

    def put_plan(self, data):
        """Add or revise a plan (also used directly by the benchmark); returns the stored plan."""
        plan_id, id_number, insurance_type = require(data, "plan_id", "id_number", "insurance_type")
        if not re.fullmatch(r"\d{17}[\dX]", id_number):
            raise BadInput("bad id_number", {"id_number": ["18 characters, upper-case X"]})
        self._check_type(insurance_type)
        plan = {"plan_id": plan_id, "id_number": id_number, "insurance_type": insurance_type,
                "period": _period(data.get("period")), "amount": _amount(data.get("amount")),
                "deadline": _deadline(data.get("deadline")), "declaration_id": data.get("declaration_id")}
        self.plans[plan_id] = plan
        self._record("plan", "upsert", plan)
        return plan

    def add_plan(self, request):
        return reply(self.put_plan(json_body(request)), 201)

    def withdraw_plan(self, request, plan_id):
        if plan_id not in self.plans or self.plans[plan_id].get("withdrawn"):
            return fail(404, "NOT_FOUND", "no such plan")
        self.plans[plan_id] = {**self.plans[plan_id], "withdrawn": True}
        self._record("plan", "withdraw", {"plan_id": plan_id})
        return reply({"plan_id": plan_id, "withdrawn": True})

    def set_fault(self, request):
        (mode,) = require(json_body(request), "mode")
        if mode not in FAULT_MODES:
            raise BadInput("bad mode", {"mode": [f"one of {sorted(FAULT_MODES)}"]})
        self.fault = mode
        return reply({"mode": mode})

    # ---- the data-exchange interface the project uses ------------------------------------------------
    def _faulty(self):
        if self.fault == "error":
            return fail(500, "INTERNAL_ERROR", "bureau system error")
        if self.fault == "garbage":
            return Response(b'{"changes": [{"kind": "plan", "op": "upsert", "data": {"plan_id": 7', status=200,
                            content_type="application/json")
        return None

    def find_enrollments(self, request):
        faulty = self._faulty()
        if faulty:
            return faulty
        id_number = request.args.get("id_number", "")
        if not id_number:
            return fail(400, "VALIDATION_ERROR", "id_number is required")
        found = [e for (number, _), e in self.enrollments.items() if number == id_number]
        return reply({"enrollments": found})

    def feed(self, request):
        faulty = self._faulty()
        if faulty:
            return faulty
        cursor_text, limit_text = request.args.get("cursor", "0") or "0", request.args.get("limit", "100")
        if not cursor_text.isdigit() or not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE:
            return fail(400, "VALIDATION_ERROR", f"cursor is a number, limit 1..{MAX_PAGE}")
        cursor, limit = int(cursor_text), int(limit_text)
        page = self.log[cursor:cursor + limit]  # seq n sits at index n - 1
        next_cursor = page[-1]["seq"] if page else cursor
        return reply({"changes": [{"kind": c["kind"], "op": c["op"], "data": c["data"]} for c in page],
                      "next_cursor": str(next_cursor), "has_more": next_cursor < len(self.log)})

    def declare(self, request):
        faulty = self._faulty()
        if faulty:
            return faulty
        data = json_body(request)
        declaration_id, id_number, insurance_type = require(data, "declaration_id", "id_number", "insurance_type")
        periods = data.get("periods")
        if not isinstance(periods, list) or not periods:
            raise BadInput("periods required", {"periods": ["a non-empty list"]})
        amount = _amount(data.get("monthly_amount"), "monthly_amount")
        if declaration_id in self.declarations:  # a retried submission: same answer
            return reply(self.declarations[declaration_id])
        if (id_number, insurance_type) not in self.enrollments:
            return fail(409, "CONFLICT", "无参保登记，不能核定")
        plans = [self.put_plan({"plan_id": f"{declaration_id}-{_period(p)}", "id_number": id_number,
                                "insurance_type": insurance_type, "period": p, "amount": amount,
                                "declaration_id": declaration_id}) for p in periods]
        answer = {"declaration_id": declaration_id, "status": "confirmed", "plans": plans}
        self.declarations[declaration_id] = answer
        return reply(answer, 201)

    def void_declaration(self, request, declaration_id):
        faulty = self._faulty()
        if faulty:
            return faulty
        declaration = self.declarations.get(declaration_id)
        if declaration is None:
            return fail(404, "NOT_FOUND", "no such declaration")
        for plan in declaration["plans"]:
            if not self.plans[plan["plan_id"]].get("withdrawn"):
                self.plans[plan["plan_id"]] = {**self.plans[plan["plan_id"]], "withdrawn": True}
                self._record("plan", "withdraw", {"plan_id": plan["plan_id"]})
        declaration["status"] = "voided"
        return reply({"declaration_id": declaration_id, "status": "voided"})


class _released:
    """Let go of the simulators' request lock (held once by SimApp for this request) while waiting."""

    def __init__(self, lock):
        self.lock = lock

    def __enter__(self):
        self.lock.release()

    def __exit__(self, *exc):
        self.lock.acquire()


class Bureaus:
    def __init__(self, config=None):
        self.config = config or {}
        self.by_code = {code: Bureau(code) for code in BUREAU_TYPES}

    def routes(self, app):
        for code, bureau in self.by_code.items():
            base = f"/sim/bureaus/{code}"
            app.route(f"{base}/enrollments", ["POST"], bureau.add_enrollment)
            app.route(f"{base}/enrollments", ["GET"], bureau.find_enrollments)
            app.route(f"{base}/plans", ["POST"], bureau.add_plan)
            app.route(f"{base}/plans/<plan_id>", ["DELETE"], bureau.withdraw_plan)
            app.route(f"{base}/feed", ["GET"], bureau.feed)
            app.route(f"{base}/fault", ["PUT"], bureau.set_fault)
        hr = self.by_code["hr"]
        app.route("/sim/bureaus/hr/declarations", ["POST"], hr.declare)
        app.route("/sim/bureaus/hr/declarations/<declaration_id>", ["DELETE"], hr.void_declaration)
        app.route("/sim/bureaus/sync", ["POST"], self.sync)
        self.app = app

    def sync(self, request):
        """Ask the project to sync now; answers with its result once applied.

        A Nameko standalone RPC to ``plans.sync_now`` over AMQP_URI rather than an HTTP call to a gateway route:
        a sync trigger is not part of the public API (no ops route to protect and document for a dev-only
        button), it works in service tests where no gateway runs, and it waits for the sync to be applied.
        Runs outside the simulators' lock: the sync reads the feed from this same app meanwhile.
        """
        amqp_uri = self.config.get("AMQP_URI")
        if not amqp_uri:
            return fail(503, "SERVICE_UNAVAILABLE", "no project to sync (AMQP_URI is not configured)")
        from nameko.standalone.rpc import ClusterRpcProxy

        try:
            with _released(self.app.lock), ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=120) as cluster:
                result = cluster.plans.sync_now()
        except Exception as exc:  # the project is down or timed out: the caller sees it plainly
            return fail(503, "SERVICE_UNAVAILABLE", f"sync failed: {type(exc).__name__}")
        return reply({"synced": all(r.get("ok") for r in result.values()), "bureaus": result})
