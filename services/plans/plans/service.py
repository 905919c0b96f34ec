"""plans: enrolments and payment plans synced from the HR and medical bureaus, 牡丹江 declarations, and the plan
state the orders service drives (lock over RPC; paid / released by its events)."""
import logging
import uuid
from datetime import datetime, timedelta

import eventlet
from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.timer import timer
from pymongo.errors import DuplicateKeyError, PyMongoError

from servicekit import config as cfg
from servicekit import metrics
from servicekit.clock import SHANGHAI, Clock
from servicekit.context import RequestContext
from servicekit.entrypoints import rpc
from servicekit.errors import AppError
from servicekit.events import Outbox, ProcessedEvents, relay_outbox
from servicekit.mongo import MongoDatabase
from servicekit.reliable import DeadLetters, reliable_event_handler
from servicekit.runtime import ServiceRuntime
from servicekit.pii import pseudonym

from plans import domain
from plans.adapters import BureauRefused, Bureaus, BureauUnavailable
from plans.repository import (DeclarationRepository, EnrollmentRepository, GuardMissed, PlanRepository,
                              SyncStateRepository, backoff, ensure_indexes)
from plans.schemas import OrderPaid, OrderReleased
from plans.sync import BureauSync, SyncBusy, apply_plan_changes

log = logging.getLogger(__name__)
CONSUMER = "plans"
DEFAULT_AVG_WAGES = "2024=6800.00,2025=7100.00,2026=7400.00,2027=7700.00"  # demo figures; real ones per year


def _iso(value):
    return value.isoformat() if isinstance(value, datetime) else value


class PlansService:
    name = "plans"

    config = Config()
    runtime = ServiceRuntime()
    db = MongoDatabase("plans", ensure_indexes)
    clock = Clock()
    request_id = RequestContext()
    bureaus = Bureaus()
    dispatch = EventDispatcher()
    dead_letters = DeadLetters()

    # ---- settings ----------------------------------------------------------------------------
    def _cutoff(self):
        return domain.CutOff(cfg.integer(self.config, "COLLECTION_CUTOFF_DAY", 25),
                             cfg.integer(self.config, "COLLECTION_CUTOFF_HOUR", 17))

    def _policy(self):
        prefixes = cfg.setting(self.config, "DECLARATION_REGION_PREFIXES", "2310")
        return domain.DeclarationPolicy(
            avg_wage_fen=domain.parse_avg_wages(cfg.setting(self.config, "DECLARATION_AVG_WAGES", DEFAULT_AVG_WAGES)),
            rate_pct=cfg.integer(self.config, "DECLARATION_RATE_PCT", 20),
            region_prefixes=tuple(p.strip() for p in str(prefixes).split(",") if p.strip()))

    @property
    def _sync_interval(self):
        return timedelta(seconds=cfg.integer(self.config, "PLANS_SYNC_INTERVAL_SECONDS", 60))

    @property
    def _stale_after(self):
        return timedelta(seconds=cfg.integer(self.config, "PLANS_SYNC_STALE_AFTER_SECONDS", 600))

    def _backoff(self):
        return backoff(cfg.integer(self.config, "PLANS_SYNC_RETRY_BASE_SECONDS", 5),
                       cfg.integer(self.config, "PLANS_SYNC_RETRY_MAX_SECONDS", 300))

    def _publish_outbox(self, rounds=20):
        for _ in range(rounds):
            if relay_outbox(Outbox(self.db), self.dispatch, self.clock.now(), limit=200) < 200:
                return

    # ---- sync --------------------------------------------------------------------------------
    def _sync_bureau(self, code, wait_seconds=0.0):
        """One sync of one bureau. With ``wait_seconds``, waits for a running sync to end and then runs again,
        so what the bureau held before the call is applied when it returns."""
        deadline = eventlet.hubs.get_hub().clock() + wait_seconds
        while True:
            try:
                totals = BureauSync(self.db, code, self.bureaus[code], self.clock).run()
                log.info("%s bureau synced: %s", code, totals)
                return {"ok": True, **totals}
            except SyncBusy:
                if eventlet.hubs.get_hub().clock() >= deadline:
                    return {"ok": False, "error": "another sync is running"}
                eventlet.sleep(0.2)
            except (BureauUnavailable, GuardMissed, PyMongoError) as exc:
                failures = SyncStateRepository(self.db).failed(code, self.clock.now(), str(exc)[:300],
                                                               self._backoff())
                log.warning("%s bureau sync failed (%d in a row), keeping the last good data: %s", code,
                            failures, exc)
                return {"ok": False, "error": str(exc)[:300]}

    @rpc()
    def sync_now(self, bureaus=None):
        """Sync now (POST /sim/bureaus/sync, ops); answers once applied. Ignores the failure back-off."""
        codes = [b for b in (bureaus or [domain.HR, domain.MEDICAL]) if b in (domain.HR, domain.MEDICAL)]
        results = {code: self._sync_bureau(code, wait_seconds=30) for code in codes}
        self._publish_outbox()
        return results

    @timer(interval=5)
    def sync_when_due(self):
        """Each bureau every PLANS_SYNC_INTERVAL_SECONDS; after failures, on the back-off schedule."""
        now, states = self.clock.now(), SyncStateRepository(self.db).all()
        for code in (domain.HR, domain.MEDICAL):
            state = states.get(code, {})
            if state.get("next_attempt_at") and now < state["next_attempt_at"]:
                continue
            last = state.get("last_attempt_at") or state.get("last_success_at")
            if last and now - last < self._sync_interval:
                continue
            self._sync_bureau(code)  # failures are logged and scheduled for a retry inside
        self._publish_outbox()

    @rpc()
    def sync_status(self):
        """Freshness per bureau. ``pending``: never synced yet but within the stale age of the first attempt
        (a fresh system is not stale); ``stale``: no successful sync for PLANS_SYNC_STALE_AFTER_SECONDS."""
        now, states = self.clock.now(), SyncStateRepository(self.db).all()
        bureaus = {}
        for code in (domain.HR, domain.MEDICAL):
            state = states.get(code, {})
            last_ok, first = state.get("last_success_at"), state.get("first_attempt_at")
            if last_ok:
                status = "fresh" if now - last_ok <= self._stale_after else "stale"
            elif first and now - first > self._stale_after:
                status = "stale"
            else:
                status = "pending"
            bureaus[code] = {"status": status, "last_success_at": _iso(last_ok),
                             "age_seconds": int((now - last_ok).total_seconds()) if last_ok else None,
                             "failures": int(state.get("failures") or 0), "last_error": state.get("last_error")}
        overall = "stale" if any(b["status"] == "stale" for b in bureaus.values()) else \
            "pending" if any(b["status"] == "pending" for b in bureaus.values()) else "fresh"
        return {"status": overall, "stale_after_seconds": int(self._stale_after.total_seconds()),
                "bureaus": bureaus}

    @rpc()
    def ping(self):
        return {"service": self.name, "ok": True}

    # ---- enrolments ----------------------------------------------------------------------------
    @staticmethod
    def _enrollment_view(doc, source):
        return {"insurance_type": doc["insurance_type"],
                "insurance_type_name": domain.INSURANCE_TYPES[doc["insurance_type"]],
                "name": doc["name"], "region_code": doc["region_code"], "status": doc.get("status", "active"),
                "enrolled_on": doc.get("enrolled_on"), "source": source,
                "synced_at": _iso(doc.get("synced_at"))}

    @rpc()
    def enrollments(self, id_number):
        """The synced HR enrolments of one ID (the tax registry's view: FE_PENSION, FE_MEDICAL, RR_PENSION)."""
        return [{"id_number": d["id_number"], "name": d["name"], "insurance_type": d["insurance_type"],
                 "region_code": d["region_code"], "status": d.get("status", "active"),
                 "enrolled_on": d.get("enrolled_on")}
                for d in EnrollmentRepository(self.db).of(id_number, domain.HR)]

    def _find_enrollment(self, id_number, insurance_type):
        if domain.BUREAU_OF.get(insurance_type) == domain.MEDICAL:
            try:
                found = self.bureaus[domain.MEDICAL].enrollments(id_number)
            except (BureauUnavailable, BureauRefused) as exc:
                log.warning("medical bureau enrolment query failed: %s", exc)
                raise AppError("SERVICE_UNAVAILABLE", "医保部门参保信息暂时无法查询，请稍后再试") from None
            match = [e for e in found if e["insurance_type"] == insurance_type]
            return (match[0], "medical_bureau") if match else (None, None)
        key = EnrollmentRepository.key(domain.HR, id_number, insurance_type)
        doc = EnrollmentRepository(self.db).by_ids([key]).get(key)
        return (doc, "tax_registry") if doc else (None, None)

    @rpc()
    def enrollment(self, id_number, insurance_type):
        """参保信息 of the session's type: RR_MEDICAL asked of the medical bureau, the others as synced."""
        if insurance_type not in domain.INSURANCE_TYPES:
            raise AppError("VALIDATION_ERROR", details={"insurance_type": ["未知险种"]})
        doc, source = self._find_enrollment(id_number, insurance_type)
        if doc is None:
            raise AppError("NOT_FOUND", "个体参保人员信息不存在")
        return {**self._enrollment_view(doc, source), "declaration_mode": self._policy().applies_to(doc)}

    # ---- plans for the payer and for orders ------------------------------------------------------
    def _plan_view(self, plan, now):
        return {"plan_id": plan["_id"], "period": plan["period"], "amount_fen": plan["amount_fen"],
                "deadline": domain.effective_deadline(plan, now, self._cutoff()).isoformat(),
                "status": plan["status"], "order_id": plan.get("order_id") if plan["status"] == domain.LOCKED
                else None, "declaration_id": plan.get("declaration_id")}

    @rpc()
    def payable_plans(self, id_number, insurance_type):
        """Unpaid and locked plans, oldest period first (paid and withdrawn excluded)."""
        now = self.clock.now()
        return [self._plan_view(p, now) for p in PlanRepository(self.db).open_plans(id_number, insurance_type)]

    @rpc()
    def payer_plans(self, id_number, insurance_type):
        """GET /me/plans: the payable list, and when it is empty the seed's message and advice."""
        plans = self.payable_plans(id_number, insurance_type)
        if plans:
            return {"plans": plans, "message": None, "advice": None}
        advice = None
        if not PlanRepository(self.db).any_plan(id_number, insurance_type):
            key = EnrollmentRepository.key(domain.HR, id_number, insurance_type)
            enrolment = EnrollmentRepository(self.db).by_ids([key]).get(key)
            advice = (domain.DECLARE_FIRST_ADVICE if self._policy().applies_to(enrolment)
                      else domain.NO_PLAN_ADVICE[domain.BUREAU_OF[insurance_type]])
        message = domain.NO_PLAN_MESSAGE + (f"。{advice}" if advice else "")
        return {"plans": [], "message": message, "advice": advice}

    @rpc()
    def lock_plans(self, order_id, id_number, insurance_type, plan_ids):
        """Lock exactly these plans to ``order_id``, all or nothing (idempotent for the same order)."""
        if not order_id or not isinstance(plan_ids, list) or not plan_ids or len(set(plan_ids)) != len(plan_ids):
            raise AppError("VALIDATION_ERROR", details={"plan_ids": ["请选择缴费计划"]})
        now, repo = self.clock.now(), PlanRepository(self.db)
        taken = []
        # sorted: two orders racing for overlapping plans meet on the same first plan
        for plan_id in sorted(plan_ids):
            if repo.lock(plan_id, id_number, insurance_type, order_id, now):
                taken.append(plan_id)
                continue
            plan = repo.get(plan_id)
            if plan and plan["id_number"] == id_number and plan["insurance_type"] == insurance_type \
                    and plan["status"] == domain.LOCKED and plan.get("order_id") == order_id:
                continue  # already ours (a retried call)
            repo.unlock(taken, order_id, now)
            if not plan or plan["id_number"] != id_number or plan["insurance_type"] != insurance_type \
                    or plan["status"] == domain.WITHDRAWN:
                raise AppError("NOT_FOUND", "缴费计划不存在", {"plan_id": plan_id})
            if plan["status"] == domain.PAID:
                raise AppError("CONFLICT", "该缴费计划已缴费", {"plan_id": plan_id})
            raise AppError("PLAN_LOCKED", details={"plan_id": plan_id})
        locked = repo.by_ids(plan_ids)
        views = [self._plan_view(locked[p], now) for p in plan_ids]
        return sorted(views, key=lambda v: v["period"])

    # ---- events from orders ------------------------------------------------------------------------
    def _handle(self, schema, payload, apply):
        """Validate, then apply once per event id. A malformed event is dead-lettered at once; any other
        failure raises, so reliable_event_handler retries with back-off and then dead-letters to dlq.plans.
        ``apply`` is made of guarded updates: a retry after a partial apply redoes only what is missing."""
        event = schema.load(payload)
        processed = ProcessedEvents(self.db, CONSUMER)
        if processed.already_processed(event["event_id"]):
            return
        apply(event)
        processed.record(event["event_id"], self.clock.now())

    @reliable_event_handler("orders", "order.paid")
    def on_order_paid(self, payload):
        def apply(event):
            repo = PlanRepository(self.db)
            try:
                paid_at = datetime.fromisoformat(event["paid_at"])
            except ValueError:
                paid_at = self.clock.now()
            for record in event["records"]:
                # Paid is final whatever the plan's state now: money was taken (a late success after a release
                # is settled by reconciliation the same way).
                if repo.mark_paid(record["plan_id"], event["order_id"], paid_at, record.get("tax_ticket_no")):
                    plan = repo.get(record["plan_id"])
                    if plan and plan.get("bureau_view", {}).get("withdrawn"):
                        log.warning("plan %s paid after its bureau withdrew it", record["plan_id"])
            log.info("order %s paid: %d plans", event["order_id"], len(event["records"]))

        self._handle(OrderPaid(), payload, apply)

    @reliable_event_handler("orders", "order.released")
    def on_order_released(self, payload):
        def apply(event):
            repo, now = PlanRepository(self.db), self.clock.now()
            for plan_id in event["plan_ids"]:
                repo.release_one(plan_id, event["order_id"], now)

        self._handle(OrderReleased(), payload, apply)

    # ---- 牡丹江 declarations ---------------------------------------------------------------------
    def _declaration_enrollment(self, id_number, insurance_type):
        policy = self._policy()
        key = EnrollmentRepository.key(domain.HR, id_number, insurance_type)
        enrolment = EnrollmentRepository(self.db).by_ids([key]).get(key)
        if insurance_type != "FE_PENSION" or not policy.applies_to(enrolment):
            raise AppError("CONFLICT", "缴费申报仅适用于牡丹江地区灵活就业养老保险，其他地区和险种的缴费计划由人社部门核定")
        return enrolment, policy

    def _declarable(self, id_number, insurance_type, enrolment, now):
        first, last = domain.declaration_window(enrolment.get("enrolled_on"), now)
        declared = DeclarationRepository(self.db).declared_periods(id_number, insurance_type)
        return domain.declarable_periods(first, last, declared)

    @rpc()
    def declaration_options(self, id_number, insurance_type):
        enrolment, policy = self._declaration_enrollment(id_number, insurance_type)
        now = self.clock.now()
        try:
            grades = policy.grades(now.astimezone(SHANGHAI).year)
        except domain.RuleViolation as violation:
            raise AppError(violation.code, violation.message) from None
        return {"grades": grades, "rate_pct": policy.rate_pct,
                "periods": self._declarable(id_number, insurance_type, enrolment, now)}

    @rpc()
    def declare(self, id_number, insurance_type, periods, grade):
        enrolment, policy = self._declaration_enrollment(id_number, insurance_type)
        now = self.clock.now()
        try:
            grades = policy.grades(now.astimezone(SHANGHAI).year)
            chosen = domain.check_declaration(periods, self._declarable(id_number, insurance_type, enrolment, now))
        except domain.RuleViolation as violation:
            details = {violation.field: [violation.message]} if violation.field else {}
            raise AppError(violation.code, violation.message, details) from None
        picked = next((g for g in grades if g["grade"] == grade), None)
        if picked is None:
            raise AppError("VALIDATION_ERROR", "请选择有效的缴费档次", {"grade": ["不在可选档次中"]})
        declarations = DeclarationRepository(self.db)
        declaration = {"_id": uuid.uuid4().hex, "id_number": id_number, "insurance_type": insurance_type,
                       "periods": chosen, "grade": grade, "base_ratio_pct": picked["base_ratio_pct"],
                       "monthly_amount_fen": picked["monthly_amount_fen"], "status": "submitted",
                       "plan_ids": [], "created_at": now, "updated_at": now}
        try:
            with self.db.client.start_session() as session, session.start_transaction():
                declarations.create(declaration, session)
        except DuplicateKeyError:
            raise AppError("CONFLICT", "所选费款所属期已申报，请刷新后重试") from None
        try:
            confirmed = self.bureaus[domain.HR].declare({
                "declaration_id": declaration["_id"], "id_number": id_number, "insurance_type": insurance_type,
                "periods": chosen, "grade": grade, "base_ratio_pct": picked["base_ratio_pct"],
                "monthly_amount": f"{picked['monthly_amount_fen'] // 100}.{picked['monthly_amount_fen'] % 100:02d}"})
        except (BureauUnavailable, BureauRefused) as exc:
            declarations.set_status(declaration["_id"], "submitted", "failed", now, error=str(exc)[:300])
            declarations.free_slots(declaration["_id"], declaration)
            log.warning("declaration not confirmed by the HR bureau: %s", exc)
            if isinstance(exc, BureauRefused):
                raise AppError("CONFLICT", f"人社部门未核定该申报：{exc}") from None
            raise AppError("SERVICE_UNAVAILABLE", "人社部门暂时无法核定申报，请稍后再试") from None
        changes = [{**p, "declaration_id": declaration["_id"], "withdrawn": False} for p in confirmed]
        for attempt in range(3):
            try:
                with self.db.client.start_session() as session, session.start_transaction():
                    apply_plan_changes(self.db, domain.HR, changes, now, session)
                    declarations.set_status(declaration["_id"], "submitted", "confirmed", now, session=session,
                                            plan_ids=[p["plan_id"] for p in confirmed], confirmed_at=now)
                break
            except GuardMissed:
                continue  # the feed delivered the same plans meanwhile: re-decide (it becomes a no-op)
        else:
            log.error("declaration %s confirmed by the bureau but not recorded; the feed will bring its plans",
                      declaration["_id"])
            raise AppError("SERVICE_UNAVAILABLE", "申报已提交，正在处理中，请稍后查看缴费计划")
        self._publish_outbox()
        log.info("declaration %s confirmed for payer %s", declaration["_id"], pseudonym(id_number))
        return {"declaration_id": declaration["_id"], "status": "confirmed",
                "plan_ids": [p["plan_id"] for p in sorted(confirmed, key=lambda p: p["period"])],
                "periods": chosen, "grade": grade, "monthly_amount_fen": picked["monthly_amount_fen"]}

    @rpc()
    def declarations(self, id_number, insurance_type):
        """The payer's 缴费申报 of this type, newest first (failed ones included, so nothing is hidden)."""
        return [{"declaration_id": d["_id"], "status": d["status"], "periods": d["periods"], "grade": d["grade"],
                 "monthly_amount_fen": d["monthly_amount_fen"], "plan_ids": d["plan_ids"],
                 "created_at": _iso(d["created_at"])}
                for d in DeclarationRepository(self.db).for_payer(id_number, insurance_type)]

    @rpc()
    def void_declaration(self, id_number, insurance_type, declaration_id):
        """申报作废: only while none of its plans is paid or in an open order (else CONFLICT)."""
        declarations, plans = DeclarationRepository(self.db), PlanRepository(self.db)
        declaration = declarations.get(declaration_id)
        if not declaration or declaration["id_number"] != id_number \
                or declaration["insurance_type"] != insurance_type:
            raise AppError("NOT_FOUND", "申报记录不存在")
        if declaration["status"] == "voided":
            return {"declaration_id": declaration_id, "status": "voided"}
        if declaration["status"] != "confirmed":
            raise AppError("CONFLICT", "该申报当前状态不允许作废")
        now = self.clock.now()
        # Withdraw locally first, in one transaction with the check: a plan an order locks meanwhile makes
        # the transaction conflict instead of slipping through.
        with self.db.client.start_session() as session, session.start_transaction():
            held = [p for p in plans.by_declaration(declaration_id, session=session)
                    if p["status"] in (domain.LOCKED, domain.PAID)]
            if held:
                session.abort_transaction()
                raise AppError("CONFLICT", "该申报的缴费计划已缴费或正在缴费中，不能作废",
                               {"plan_ids": [p["_id"] for p in held]})
            if not declarations.set_status(declaration_id, "confirmed", "voiding", now, session=session):
                session.abort_transaction()
                raise AppError("CONFLICT", "该申报正在处理中，请稍后再试")
            plans.withdraw_declaration_plans(declaration_id, now, session)
        try:
            self.bureaus[domain.HR].void_declaration(declaration_id)
        except (BureauUnavailable, BureauRefused) as exc:
            plans.restore_declaration_plans(declaration_id, now)
            declarations.set_status(declaration_id, "voiding", "confirmed", now)
            log.warning("HR bureau did not void declaration %s: %s", declaration_id, exc)
            raise AppError("SERVICE_UNAVAILABLE", "人社部门暂时无法办理申报作废，请稍后再试") from None
        with self.db.client.start_session() as session, session.start_transaction():
            declarations.set_status(declaration_id, "voiding", "voided", now, session=session, voided_at=now)
            declarations.free_slots(declaration_id, declaration, session=session)
            outbox = Outbox(self.db)
            for plan in plans.by_declaration(declaration_id, session=session):
                outbox.add("plan.withdrawn", {"plan_id": plan["_id"], "bureau": plan["bureau"],
                                              "id_number": plan["id_number"],
                                              "insurance_type": plan["insurance_type"], "period": plan["period"],
                                              "status": plan["status"], "applied": True, "reason": "void"},
                           now, session=session)
        self._publish_outbox()
        return {"declaration_id": declaration_id, "status": "voided"}

    @timer(interval=5)
    def relay_events(self):
        """Publishes what a crash left in the outbox (the request path publishes right away)."""
        self._publish_outbox()
        metrics.refresh_outbox_backlog(self.name, self.db)
