"""payment_gateway: channels, payments, signed channel notifications and the active status query.

A channel's word (notification or status query answer) is applied by one guarded transition of the payment,
written with its event (payment.succeeded / payment.failed / payment.unknown) in one transaction; the unique
(channel, channel txn id) document makes a channel transaction count once.
"""
import logging
from datetime import date, time, timedelta

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.rpc import RpcProxy
from nameko.timer import timer
from pymongo.errors import DuplicateKeyError

from servicekit import config as cfg
from servicekit import metrics
from servicekit.clock import SHANGHAI, Clock
from servicekit.context import RequestContext
from servicekit.entrypoints import rpc
from servicekit.errors import AppError
from servicekit.events import Outbox, relay_outbox
from servicekit.money import fen_to_str
from servicekit.mongo import MongoDatabase, in_transaction
from servicekit.pii import pseudonym
from servicekit.runtime import ServiceRuntime

from orders.adapters import enrollment_region
from payment_gateway import domain, reconciler
from payment_gateway.adapters import Channels, ChannelUnavailable
from payment_gateway.repository import PaymentRepository, ensure_indexes

log = logging.getLogger(__name__)


def payment_view(payment):
    view = {"payment_id": payment["_id"], "order_id": payment["order_id"], "channel": payment["channel"],
            "amount": fen_to_str(payment["amount_fen"]), "amount_fen": payment["amount_fen"],
            "status": payment["status"], "channel_txn_id": payment.get("channel_txn_id"),
            "paid_at": payment["paid_at"].astimezone(SHANGHAI).isoformat() if payment.get("paid_at") else None,
            "created_at": payment["created_at"].astimezone(SHANGHAI).isoformat()}
    if payment.get("pay_url"):
        view["pay_url"] = payment["pay_url"]
    return view


class PaymentGatewayService:
    name = "payment_gateway"

    config = Config()
    runtime = ServiceRuntime()
    db = MongoDatabase("payment_gateway", ensure_indexes)
    clock = Clock()
    request_id = RequestContext()
    dispatch = EventDispatcher()
    channels = Channels()
    orders_rpc = RpcProxy("orders")
    plans_rpc = RpcProxy("plans")

    # ---- settings ----------------------------------------------------------------------------
    @property
    def _backoff(self):
        return domain.parse_backoff(cfg.setting(self.config, "PAYMENT_QUERY_BACKOFF", None))

    @property
    def _unknown_poll(self):
        return timedelta(seconds=float(cfg.setting(self.config, "PAYMENT_UNKNOWN_POLL_SECONDS", 300)))

    @property
    def _notify_base(self):
        return cfg.setting(self.config, "PAYMENT_NOTIFY_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

    @property
    def _public_base(self):
        """Where payers reach the H5 front-end: the channel's 返回商户 brings them to the order's result page."""
        return cfg.setting(self.config, "PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

    def _publish(self):
        relay_outbox(Outbox(self.db), self.dispatch, self.clock.now())


    # ---- RPC -----------------------------------------------------------------------------------
    @rpc()
    def ping(self):
        return {"service": self.name, "ok": True}

    @rpc()
    def list_channels(self, id_number, insurance_type):
        region = enrollment_region(self.plans_rpc, id_number, insurance_type,
                                   str(cfg.setting(self.config, "DEFAULT_REGION_CODE", "230100")))
        return {"channels": self.channels.offered(region, insurance_type), "region_code": region}

    @rpc()
    def create_payment(self, order_id, payer_id, channel):
        """立即缴费 → 确认缴费: open the channel transaction, then move the order to paying (one active payment)."""
        order = self.orders_rpc.get_order(order_id, payer_id)  # NOT_FOUND for someone else's order
        if order["status"] != "pending":
            raise AppError("CONFLICT", order.get("message") or "当前状态不允许支付", {"status": order["status"]})
        offered = {c["code"] for c in self.channels.offered(order.get("region_code"), order["insurance_type"])}
        adapter = self.channels.adapter(channel) if channel in offered else None
        if adapter is None:
            raise AppError("VALIDATION_ERROR", "该地区该险种不支持此缴费渠道", {"channel": ["不支持的缴费渠道"]})
        now, payments = self.clock.now(), PaymentRepository(self.db)
        payment = payments.insert(order, payer_id, channel, now, now + timedelta(seconds=self._backoff[0]))
        try:
            pay_url = adapter.open(payment["_id"], order["amount_fen"], now,
                                   f"{self._notify_base}/api/v1/notify/{channel}", "社会保险费",
                                   f"{self._public_base}/#/result/{order_id}")
        except ChannelUnavailable as exc:
            payments.move(payment["_id"], [domain.CREATING], domain.ABANDONED, now, extra={"reason": str(exc)})
            log.warning("payment %s not opened: %s", payment["_id"], exc)
            raise AppError("SERVICE_UNAVAILABLE", "缴费渠道暂时不可用，请稍后再试") from None
        try:
            self.orders_rpc.start_payment(order_id, payer_id, payment["_id"], channel)
        except AppError:
            # Refused (another payment won, expired, window closed): the channel transaction is never shown.
            payments.move(payment["_id"], [domain.CREATING], domain.ABANDONED, now, extra={"reason": "order refused"})
            raise
        payments.move(payment["_id"], [domain.CREATING], domain.PROCESSING, now, extra={"pay_url": pay_url})
        metrics.PAYMENTS.labels(channel, "started").inc()
        log.info("payment %s opened with %s for payer %s", payment["_id"], channel, pseudonym(payer_id))
        return {"payment_id": payment["_id"], "order_id": order_id, "channel": channel,
                "amount": fen_to_str(order["amount_fen"]), "pay_url": pay_url}

    @rpc()
    def get_payment(self, payment_id):
        payment = PaymentRepository(self.db).get(payment_id)
        if payment is None:
            raise AppError("NOT_FOUND")
        view = payment_view(payment)
        view["mismatches"] = [{**m, "at": m["at"].isoformat()}
                              for m in PaymentRepository(self.db).mismatches_for(payment_id)]
        return view

    @rpc()
    def payments_for_payer(self, payer_id, paid_from, paid_to):
        """第三方支付情况: this payer's payments by payment date (Asia/Shanghai)."""
        try:
            start, end = domain.parse_date_range(paid_from, paid_to)
        except domain.RuleViolation as violation:
            raise AppError(violation.code, violation.message, violation.details) from None
        found = [payment_view(p) for p in PaymentRepository(self.db).for_payer_between(payer_id, start, end)]
        answer = {"payments": [{k: v for k, v in p.items() if k != "pay_url"} for p in found]}
        if not found:
            answer["message"] = "未查询到缴费记录"
        return answer

    @rpc()
    def handle_notification(self, channel, fields):
        """A channel's asynchronous result. Verified before anything is read; stored before we say 200."""
        adapter = self.channels.adapter(channel)
        if adapter is None:
            raise AppError("NOT_FOUND", "未知的缴费渠道")
        if not adapter.verify(fields):
            log.warning("%s notification with an invalid signature refused", channel)
            metrics.NOTIFICATIONS.labels(channel, "forged").inc()  # known channels only: bounded labels
            raise AppError("SIGNATURE_INVALID")
        now, payments = self.clock.now(), PaymentRepository(self.db)
        try:
            result = domain.result_from_fields(fields)
        except ValueError as exc:
            payments.store_notification(channel, fields, "malformed", now)
            metrics.NOTIFICATIONS.labels(channel, "malformed").inc()
            log.error("%s notification signed but malformed: %s", channel, exc)
            return {"status": "malformed"}  # the channel cannot fix it by retrying; ops can read it
        payments.store_notification(channel, fields, "received", now, payment_id=result.payment_id)
        verdict = self._apply(channel, result, now, source="notification")
        metrics.NOTIFICATIONS.labels(channel, "duplicate" if verdict == "duplicate" else "valid").inc()
        self._publish()
        return {"status": verdict}

    # ---- applying a channel's word ------------------------------------------------------------
    def _apply(self, channel, result: domain.ChannelResult, now, source):
        payments = PaymentRepository(self.db)
        payment = payments.get(result.payment_id)
        if payment is None or payment["channel"] != channel:
            payments.record_mismatch("LOCAL_MISSING", result.payment_id, channel, result.channel_txn_id, None,
                                     result.amount_fen, now)
            log.error("%s reports %s for unknown payment %s: flagged", channel, result.outcome, result.payment_id)
            return "unknown_payment"
        if result.outcome in ("processing", "not_found"):
            return "processing"
        if result.amount_fen is not None and result.amount_fen != payment["amount_fen"]:
            payments.record_mismatch("AMOUNT_MISMATCH", payment["_id"], channel, result.channel_txn_id,
                                     payment["amount_fen"], result.amount_fen, now)
            if self._move_with_event(payment, domain.OPEN, domain.MISMATCH, now, "payment.unknown",
                                     {"reason": "amount_mismatch"}, extra={"mismatch_txn_id": result.channel_txn_id}):
                metrics.PAYMENTS.labels(channel, "amount_mismatch").inc()
            log.error("payment %s: channel amount %s differs from %s; never paid", payment["_id"],
                      result.amount_fen, payment["amount_fen"])
            return "amount_mismatch"
        if result.outcome == "success":
            return self._succeed(payment, result, now, source)
        moved = self._move_with_event(payment, domain.OPEN, domain.FAILED, now, "payment.failed",
                                      {"reason": f"channel:{result.code}"}, extra={"failure_code": result.code})
        if moved:  # only the call that made the transition counts it
            metrics.PAYMENTS.labels(channel, "failed").inc()
        return "failed" if moved else "duplicate"

    def _succeed(self, payment, result, now, source):
        payments = PaymentRepository(self.db)
        paid_at = result.paid_at or now
        # every success needs a settlement date to be reconciled against: the channel's, else the day it was paid
        settle_date = result.settle_date or paid_at.astimezone(SHANGHAI).date().isoformat()
        outcome = {}

        def succeed(session):
            outcome.clear()
            if not payments.claim_txn(payment["channel"], result.channel_txn_id, payment["_id"], now, session):
                outcome["verdict"] = "txn_seen"
                session.abort_transaction()  # the server aborted it on the duplicate key; do not commit
                return
            if not payments.move(payment["_id"], domain.OPEN, domain.SUCCEEDED, now, session=session, extra={
                    "channel_txn_id": result.channel_txn_id, "paid_at": paid_at, "dated_at": paid_at,
                    "settle_date": settle_date, "confirmed_by": source}):
                outcome["verdict"] = "not_open"
                session.abort_transaction()  # keep the txn id free: it belongs to no state change here
                return
            Outbox(self.db).add("payment.succeeded", {
                "payment_id": payment["_id"], "order_id": payment["order_id"], "channel": payment["channel"],
                "channel_txn_id": result.channel_txn_id, "amount_fen": payment["amount_fen"],
                "paid_at": paid_at.isoformat(), "settle_date": settle_date, "source": source},
                now, session=session)
            outcome["verdict"] = "succeeded"

        in_transaction(self.db, succeed)
        verdict = outcome.get("verdict")
        if verdict == "succeeded":
            metrics.PAYMENTS.labels(payment["channel"], "succeeded").inc()
            log.info("payment %s succeeded (%s, by %s)", payment["_id"], fen_to_str(payment["amount_fen"]), source)
            return "succeeded"
        current = payments.get(payment["_id"])
        if current["status"] == domain.SUCCEEDED and current.get("channel_txn_id") == result.channel_txn_id:
            return "duplicate"
        owner = payments.txn_owner(payment["channel"], result.channel_txn_id)
        kind = "DUPLICATE_TXN" if owner and owner != payment["_id"] else "LATE_SUCCESS"
        # Money taken for a payment that already ended (failed/abandoned) or a txn id reused: for ops, not paid.
        payments.record_mismatch(kind, payment["_id"], payment["channel"], result.channel_txn_id,
                                 payment["amount_fen"], result.amount_fen, now)
        log.error("payment %s (%s): channel success not applied (%s); flagged", payment["_id"], current["status"],
                  kind)
        metrics.PAYMENTS.labels(payment["channel"], "flagged").inc()
        return "flagged"

    def _move_with_event(self, payment, sources, target, now, event_type, fields, extra=None):
        payments = PaymentRepository(self.db)

        def move(session):
            if not payments.move(payment["_id"], sources, target, now, session=session, extra=extra):
                return False
            Outbox(self.db).add(event_type, {"payment_id": payment["_id"], "order_id": payment["order_id"],
                                             "channel": payment["channel"], **fields}, now, session=session)
            return True

        return in_transaction(self.db, move)

    # ---- the active status query ------------------------------------------------------------------
    @timer(interval=0.5)
    def query_channels(self):
        """Ask the channel about open payments whose notification is late: back-off 1, 2, 4, 8, 16, 32 s
        (PAYMENT_QUERY_BACKOFF), then `unknown`, then every PAYMENT_UNKNOWN_POLL_SECONDS until settled."""
        now, payments = self.clock.now(), PaymentRepository(self.db)
        touched = False
        for payment in payments.due_for_query(now):
            if not payments.claim_query(payment, now):
                continue
            touched = True
            try:
                self._query_one(payment, now)
            except Exception:
                log.exception("status query of payment %s failed", payment["_id"])
        if touched:
            self._publish()

    def _query_one(self, payment, now):
        payments = PaymentRepository(self.db)
        adapter = self.channels.adapter(payment["channel"])
        try:
            result = adapter.query(payment["_id"], payment["created_at"])
            verdict = self._apply(payment["channel"], result, now, source="query")
        except ChannelUnavailable as exc:
            log.warning("status query of payment %s: %s", payment["_id"], exc)
            verdict, result = "processing", None
        if verdict != "processing":
            return
        attempts = payment["query_attempts"] + 1
        if payment["status"] == domain.UNKNOWN:
            payments.set_fields(payment["_id"], {"next_query_at": now + self._unknown_poll, "query_attempts": attempts})
            return
        next_at = domain.next_query(now, attempts, self._backoff)
        if next_at is not None:
            payments.set_fields(payment["_id"], {"next_query_at": next_at, "query_attempts": attempts},
                                expect_status=payment["status"])
            return
        if payment["status"] == domain.CREATING and result is not None and result.outcome == "not_found":
            # Never reached the channel (crash while opening): no money can have been taken.
            if self._move_with_event(payment, [domain.CREATING], domain.FAILED, now, "payment.failed",
                                     {"reason": "not_opened"}):
                metrics.PAYMENTS.labels(payment["channel"], "failed").inc()
            return
        moved = self._move_with_event(payment, [domain.CREATING, domain.PROCESSING], domain.UNKNOWN, now,
                                      "payment.unknown", {"reason": "channel_cannot_tell"},
                                      extra={"next_query_at": now + self._unknown_poll, "query_attempts": attempts})
        if moved:
            metrics.PAYMENTS.labels(payment["channel"], "unknown").inc()
            log.warning("payment %s: no outcome after %d status queries; unknown", payment["_id"], attempts)

    @timer(interval=2)
    def relay_events(self):
        self._publish()
        metrics.refresh_outbox_backlog(self.name, self.db)

    # ---- next-day reconciliation ----------------------------------------------------------------
    def _statement_channels(self):
        return [code for code in self.channels.catalog
                if hasattr(self.channels.adapter(code), "fetch_statement")]

    @rpc()
    def start_reconciliation(self, channel, settle_date, trigger="ops"):
        """Reconcile ``channel`` for ``settle_date`` (YYYY-MM-DD) against its settlement file; runs in the
        background (run_reconciliations). CONFLICT while a run for the same channel and date is running."""
        errors = {}
        if channel not in self._statement_channels():
            errors["channel"] = ["未知的缴费渠道或该渠道不提供对账文件"]
        try:
            day = date.fromisoformat(settle_date) if isinstance(settle_date, str) and len(settle_date) == 10 \
                else None
        except ValueError:
            day = None
        now = self.clock.now()
        if day is None:
            errors["date"] = ["日期格式应为YYYY-MM-DD"]
        elif day > now.astimezone(SHANGHAI).date():
            errors["date"] = ["不能对未来的日期对账"]
        if errors:
            raise AppError("VALIDATION_ERROR", "对账参数有误", errors)
        try:
            run_id = reconciler.start_run(self.db, channel, day, now, trigger=trigger)
        except reconciler.Conflict as conflict:
            raise AppError("CONFLICT", "该渠道该日期的对账正在进行中",
                           {"reconciliation_id": conflict.run_id}) from None
        log.info("reconciliation %s requested: %s %s (%s)", run_id, channel, day, trigger)
        return {"reconciliation_id": run_id, "status": reconciler.RUNNING}

    @rpc()
    def get_reconciliation(self, reconciliation_id, offset=0, limit=1000):
        found = reconciler.report(self.db, reconciliation_id, offset, limit)
        if found is None:
            raise AppError("NOT_FOUND", "未找到该对账")
        return found

    @timer(interval=1)
    def run_reconciliations(self):
        """Carry out requested runs, and take over runs whose process died (lease ran out). A run is held by
        one process at a time; this timer waits for a run to end before its next tick."""
        while True:
            run = reconciler.claim_next(self.db)
            if run is None:
                return
            adapter = self.channels.adapter(run["channel"])
            try:
                reconciler.Reconciler(self.db, self, adapter, self.clock.now(),
                                      cfg.setting(self.config, "RECONCILIATION_STATEMENT_DIR", None)).run(run)
            except reconciler.LostLease:
                log.warning("reconciliation %s was taken over by another process", run["_id"])
            except Exception:
                # left running: its lease runs out and the run resumes from its last checkpoint
                log.exception("reconciliation %s stopped; it resumes after its lease", run["_id"])
            self._publish()

    @timer(interval=30)
    def schedule_reconciliations(self):
        """Each morning (RECONCILIATION_DAILY_AT, Asia/Shanghai) reconcile the previous settlement date of every
        channel that publishes a file. One instance wins the day (a unique schedule document); a failed run
        (file not out yet) is tried again every RECONCILIATION_RETRY_MINUTES, RECONCILIATION_MAX_ATTEMPTS times."""
        at = cfg.setting(self.config, "RECONCILIATION_DAILY_AT", "09:00")
        if str(at).lower() in ("off", "none", "disabled", "false"):
            return
        if isinstance(at, int):  # YAML 1.1 reads an unquoted 9:30 as sexagesimal 570
            hour, minute = divmod(at, 60)
        else:
            hour, _, minute = str(at).partition(":")
        local = self.clock.now().astimezone(SHANGHAI)
        if local.time() < time(int(hour), int(minute or 0)):
            return
        day = (local.date() - timedelta(days=1)).isoformat()
        retry = timedelta(minutes=float(cfg.setting(self.config, "RECONCILIATION_RETRY_MINUTES", 30)))
        attempts = cfg.integer(self.config, "RECONCILIATION_MAX_ATTEMPTS", 6)
        now = self.clock.now()
        for channel in self._statement_channels():
            key = f"{channel}:{day}"
            schedule = self.db.reconciliation_schedule.find_one({"_id": key})
            if schedule is None:
                try:
                    self.db.reconciliation_schedule.insert_one({"_id": key, "attempts": 0, "run_id": None,
                                                                "next_at": now})
                except DuplicateKeyError:
                    continue  # another instance has the day
                schedule = self.db.reconciliation_schedule.find_one({"_id": key})
            if schedule["attempts"] >= attempts or schedule["next_at"] > now:
                continue
            if schedule["run_id"]:
                last = self.db.reconciliations.find_one({"_id": schedule["run_id"]}, {"status": 1})
                if last is not None and last["status"] != reconciler.FAILED:
                    continue  # running or done
            claimed = self.db.reconciliation_schedule.update_one(
                {"_id": key, "attempts": schedule["attempts"], "run_id": schedule["run_id"]},
                {"$set": {"next_at": now + retry}, "$inc": {"attempts": 1}})
            if not claimed.modified_count:
                continue
            try:
                run_id = reconciler.start_run(self.db, channel, date.fromisoformat(day), now, trigger="timer")
            except reconciler.Conflict as conflict:
                run_id = conflict.run_id  # an ops run of the same day is under way: that one counts
            self.db.reconciliation_schedule.update_one({"_id": key}, {"$set": {"run_id": run_id}})
            log.info("daily reconciliation of %s for %s: run %s", channel, day, run_id)
