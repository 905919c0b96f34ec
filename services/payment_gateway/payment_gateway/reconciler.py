"""Running a reconciliation: runs, the one-run-per-channel-and-date lock, leases, checkpoints, the report.

A run goes: fetch the file to disk (streamed) → check it whole (header, every line, totals; a bad file fails the
run and changes nothing) → apply it in chunks of lines (one query per chunk for the payments, actions through
the service's normal paths, a checkpoint per chunk) → the payments no file listed → counts, completed event.

Crash safety: a run belongs to one process at a time by a lease renewed with every checkpoint; a run whose lease
ran out is taken over and resumes after its last checkpoint. Each listed mismatch is written to the report
(``reconciliation_items``, keyed by run and line) *before* its action, so a resumed chunk reports what the first
attempt saw, not the state that attempt left behind. Counts come from the items, so they stay exact.
"""
import hashlib
import logging
import os
import socket
import tempfile
import uuid
from datetime import date, datetime, timedelta

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import DuplicateKeyError

from servicekit import metrics
from servicekit.clock import SHANGHAI, SystemClock
from servicekit.events import Outbox
from servicekit.money import fen_to_str
from servicekit.mongo import in_transaction

from payment_gateway import domain
from payment_gateway import reconciliation as rec

log = logging.getLogger(__name__)

RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
# Lines per database round: one lookup, one statement_date update, one plan query, one checkpoint. Large $in lists
# cost quadratically on the embedded dev server (1000 ids: 0.75 s, 100: 13 ms); 200 is cheap on both.
CHUNK = 200
LEASE = timedelta(seconds=60)
# Leases are about processes, not business time: they run on the real clock even when the dev clock moves.
REAL_CLOCK = SystemClock()
INSTANCE = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Conflict(Exception):
    def __init__(self, run_id):
        super().__init__(run_id)
        self.run_id = run_id


class LostLease(Exception):
    """Another process took the run over (this one was presumed dead): stop without touching more."""


class RunFailed(Exception):
    pass


# ---- runs and the lock ----------------------------------------------------------------------------------------
def start_run(db, channel, settle_date: date, now, trigger="ops"):
    """A new run for (channel, date), or Conflict(run_id) while one is running."""
    key = f"{channel}:{settle_date.isoformat()}"
    run_id = uuid.uuid4().hex
    for _ in range(3):
        try:
            db.reconciliation_locks.insert_one({"_id": key, "run_id": run_id, "at": now})
            break
        except DuplicateKeyError:
            lock = db.reconciliation_locks.find_one({"_id": key})
            if lock is None:
                continue
            held = db.reconciliations.find_one({"_id": lock["run_id"]}, {"status": 1})
            if held is not None and held["status"] == RUNNING:
                raise Conflict(lock["run_id"]) from None
            # the lock outlived its run (a crash between finishing and unlocking): take it over
            if db.reconciliation_locks.update_one({"_id": key, "run_id": lock["run_id"]},
                                                  {"$set": {"run_id": run_id, "at": now}}).modified_count:
                break
    else:
        raise Conflict(None)
    db.reconciliations.insert_one({
        "_id": run_id, "channel": channel, "date": settle_date.isoformat(), "status": RUNNING, "trigger": trigger,
        "created_at": now, "started_at": None, "finished_at": None, "lease_owner": None, "lease_until": None,
        "attempts": 0, "checkpoint": None, "progress": {"lines_done": 0, "lines_total": None}, "counts": {},
        "error": None, "statement": None})
    return run_id


def claim_next(db, limit=5):
    """A running run nobody holds (new, or its holder's lease ran out), now held by this process."""
    now = REAL_CLOCK.now()
    for run in db.reconciliations.find({"status": RUNNING, "$or": [{"lease_until": None},
                                                                    {"lease_until": {"$lt": now}}]},
                                       limit=limit).sort("created_at", ASCENDING):
        claimed = db.reconciliations.update_one(
            {"_id": run["_id"], "status": RUNNING, "lease_until": run["lease_until"]},
            {"$set": {"lease_owner": INSTANCE, "lease_until": now + LEASE}, "$inc": {"attempts": 1}})
        if claimed.modified_count:
            return db.reconciliations.find_one({"_id": run["_id"]})
    return None


def _renew(db, run_id, fields):
    renewed = db.reconciliations.update_one(
        {"_id": run_id, "status": RUNNING, "lease_owner": INSTANCE},
        {"$set": {"lease_until": REAL_CLOCK.now() + LEASE, **fields}})
    if not renewed.modified_count:
        raise LostLease(run_id)


# ---- the report -------------------------------------------------------------------------------------------
def _money(fen):
    return None if fen is None else fen_to_str(fen)


def report(db, run_id, offset=0, limit=1000):
    run = db.reconciliations.find_one({"_id": run_id}) if isinstance(run_id, str) else None
    if run is None:
        return None
    items = db.reconciliation_items.find({"run_id": run_id}, skip=max(0, int(offset)),
                                         limit=max(1, min(int(limit), 5000))).sort("seq", ASCENDING)
    mismatches = [{"category": i["category"], "payment_id": i.get("payment_id"),
                   "channel_txn_id": i.get("channel_txn_id"), "local_amount": _money(i.get("local_amount_fen")),
                   "channel_amount": _money(i.get("channel_amount_fen")), "resolution": i["resolution"],
                   "line": i.get("line_no")} for i in items]
    listed = sum(run["counts"].get(c, 0) for c in rec.CATEGORIES)
    return {"reconciliation_id": run["_id"], "channel": run["channel"], "date": run["date"],
            "status": run["status"], "trigger": run.get("trigger"), "counts": run["counts"],
            "mismatches": mismatches, "mismatches_total": listed if run["status"] == COMPLETED else None,
            "offset": offset, "progress": run["progress"], "error": run["error"], "statement": run["statement"],
            "created_at": run["created_at"].astimezone(SHANGHAI).isoformat(),
            "finished_at": run["finished_at"].astimezone(SHANGHAI).isoformat() if run["finished_at"] else None}


# ---- one run --------------------------------------------------------------------------------------------------
class Reconciler:
    """Carries out a claimed run. ``service`` gives the normal paths: ``_succeed``, ``_move_with_event``;
    ``adapter`` fetches the channel's file; ``now`` is the service clock's time."""

    def __init__(self, db, service, adapter, now, statement_dir=None, chunk=CHUNK, on_chunk=None):
        self.db, self.service, self.adapter, self.now = db, service, adapter, now
        self.statement_dir, self.chunk, self.on_chunk = statement_dir, chunk, on_chunk
        self.outbox = Outbox(db)

    def run(self, run):
        run_id, channel = run["_id"], run["channel"]
        settle_date = date.fromisoformat(run["date"])
        fd, path = tempfile.mkstemp(prefix=f"stmt-{channel}-{run['date']}-", dir=self.statement_dir)
        os.close(fd)
        try:
            try:
                self.adapter.fetch_statement(settle_date, path)
                header, summary, digest, size = self._check(path, settle_date)
                if run.get("statement") and run["statement"]["sha256"] != digest and run.get("checkpoint"):
                    raise RunFailed("the channel's file changed since this run began applying it; the lines "
                                    "applied so far stand, run it again to finish against the new file")
            except (rec.StatementError, RunFailed) as exc:
                return self._fail(run, str(exc))
            except Exception as exc:  # the channel unreachable, a refused download: nothing applied
                return self._fail(run, f"{type(exc).__name__}: {exc}")
            _renew(self.db, run_id, {"started_at": run.get("started_at") or self.now,
                                     "statement": {"lines": summary.count, "successes": summary.success_count,
                                                   "success_amount": fen_to_str(summary.success_amount_fen),
                                                   "sha256": digest, "bytes": size,
                                                   "generated_at": header.generated_at.isoformat()},
                                     "progress.lines_total": summary.count})
            self._apply(run, path, settle_date)
            self._absent(run, settle_date)
            return self._complete(run)
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass

    def _check(self, path, settle_date):
        digest = hashlib.sha256()

        def lines():
            with open(path, "rb") as handle:
                for raw in handle:
                    digest.update(raw)
                    yield raw

        header, summary = rec.check_statement(lines(), settle_date, getattr(self.adapter, "merchant_id", None))
        return header, summary, digest.hexdigest(), os.path.getsize(path)

    # ---- pass 2: every line ----------------------------------------------------------------------------------
    def _apply(self, run, path, settle_date):
        checkpoint = run.get("checkpoint") or {"line_no": 1, "matched": 0, "skipped": 0}
        resumed_from = checkpoint["line_no"]
        counters = {"matched": checkpoint["matched"], "skipped": checkpoint["skipped"]}
        with open(path, "rb") as handle:
            batch = []
            for item in rec.read_statement(handle, settle_date):
                if not isinstance(item, rec.Line) or item.line_no <= resumed_from:
                    continue
                batch.append(item)
                if len(batch) >= self.chunk:
                    self._chunk(run, batch, counters, resumed_from)
                    batch = []
            if batch:
                self._chunk(run, batch, counters, resumed_from)

    def _chunk(self, run, lines, counters, resumed_from):
        run_id, channel = run["_id"], run["channel"]
        started = REAL_CLOCK.now()
        payments = {p["_id"]: p for p in self.db.payments.find({"_id": {"$in": [l.payment_id for l in lines]}})}
        earlier = {}
        if run.get("checkpoint") and lines[0].line_no > resumed_from:
            # a resumed run: what the first attempt reported for these lines stands
            earlier = {i["line_no"]: i for i in self.db.reconciliation_items.find(
                {"run_id": run_id, "seq": {"$gte": lines[0].line_no, "$lte": lines[-1].line_no}})}
        decided = []
        for line in lines:
            payment = payments.get(line.payment_id)
            verdict = rec.classify_line(line, payment, channel)
            if line.line_no in earlier:
                old = earlier[line.line_no]
                verdict = rec.Verdict(old["category"], old["resolution"], verdict.action, old["record"])
            decided.append((line, payment, verdict))
        listed = [(l, p, v) for l, p, v in decided if v.category in rec.CATEGORIES]
        if listed:
            self.db.reconciliation_items.bulk_write([UpdateOne(
                {"_id": f"{run_id}:{l.line_no}"},
                {"$setOnInsert": self._item(run_id, l.line_no, v, p, l)}, upsert=True) for l, p, v in listed],
                ordered=False)
        seen = []
        for line, payment, verdict in decided:
            if verdict.category == rec.MATCHED:
                counters["matched"] += 1
            elif verdict.category == rec.SKIPPED:
                counters["skipped"] += 1
            self._act(run, line, payment, verdict)
            if verdict.record:
                self._record(run, verdict, payment, line)
            if line.success and payment is not None and verdict.category in (rec.MATCHED, rec.LOCAL_NOT_SUCCESS,
                                                                              rec.DUPLICATE_PAYMENT):
                seen.append(payment["_id"])
        if seen:
            # what a file has listed is no longer CHANNEL_MISSING; the first file to list it is kept
            self.db.payments.update_many({"_id": {"$in": seen}, "statement_date": None},
                                         {"$set": {"statement_date": run["date"]}})
            self._plan_duplicates(run, [payments[i] for i in dict.fromkeys(seen)])
        matched_seconds = (REAL_CLOCK.now() - started).total_seconds()
        _renew(self.db, run_id, {"checkpoint": {"line_no": lines[-1].line_no, **counters},
                                 "progress.lines_done": lines[-1].line_no - 1})
        if self.on_chunk:
            self.on_chunk(len(lines), matched_seconds)

    def _item(self, run_id, seq, verdict, payment, line=None, extra=None):
        return {"run_id": run_id, "seq": seq, "line_no": line.line_no if line else None,
                "category": verdict.category, "resolution": verdict.resolution, "record": verdict.record,
                "payment_id": (payment or {}).get("_id") or (line.payment_id if line else None),
                "channel_txn_id": line.channel_txn_id if line else (payment or {}).get("channel_txn_id"),
                "local_amount_fen": (payment or {}).get("amount_fen"),
                "channel_amount_fen": line.amount_fen if line else None, **(extra or {})}

    def _act(self, run, line, payment, verdict):
        if verdict.action is None or payment is None:
            return
        now = self.now
        if verdict.action == "succeed":
            result = domain.ChannelResult(payment["_id"], "success", line.channel_txn_id, line.amount_fen,
                                          line.txn_time, line.settle_date.isoformat(), line.resp_code)
            outcome = self.service._succeed(payment, result, now, "reconciliation")
            if outcome not in ("succeeded", "duplicate"):
                log.error("reconciliation %s: payment %s not marked paid (%s)", run["_id"], payment["_id"], outcome)
        elif verdict.action == "fail":
            self.service._move_with_event(payment, domain.OPEN, domain.FAILED, now, "payment.failed",
                                          {"reason": f"reconciliation:{run['date']}"},
                                          extra={"failure_code": line.resp_code if line else "absent"})
        elif verdict.action == "mismatch":
            self.service._move_with_event(payment, domain.OPEN, domain.MISMATCH, now, "payment.unknown",
                                          {"reason": "amount_mismatch"},
                                          extra={"mismatch_txn_id": line.channel_txn_id})

    def _record(self, run, verdict, payment, line=None, txn_id=None, channel_amount=None):
        """The mismatch for ops, once: stored with its event in one transaction; a re-run finds it and is quiet."""
        payment_id = (payment or {}).get("_id") or (line.payment_id if line else None)
        txn_id = txn_id if txn_id is not None else (line.channel_txn_id if line else (payment or {}).get(
            "channel_txn_id"))
        channel_amount = channel_amount if channel_amount is not None else (line.amount_fen if line else None)
        mismatch_id = rec.mismatch_id(run["channel"], verdict.category, payment_id, txn_id)
        if self.db.mismatches.count_documents({"_id": mismatch_id}, limit=1):
            return
        doc = {"_id": mismatch_id, "kind": verdict.category, "payment_id": payment_id, "channel": run["channel"],
               "channel_txn_id": txn_id, "local_amount_fen": (payment or {}).get("amount_fen"),
               "channel_amount_fen": channel_amount, "at": self.now, "resolution": verdict.resolution,
               "source": "reconciliation", "reconciliation_id": run["_id"], "settle_date": run["date"],
               "order_id": (payment or {}).get("order_id")}

        def store(session):
            try:
                self.db.mismatches.insert_one(doc, session=session)
            except DuplicateKeyError:
                session.abort_transaction()
                return False
            self.outbox.add("reconciliation.mismatch", {
                "reconciliation_id": run["_id"], "mismatch_id": mismatch_id, "channel": run["channel"],
                "settle_date": run["date"], "category": verdict.category, "resolution": verdict.resolution,
                "payment_id": payment_id, "order_id": doc["order_id"], "channel_txn_id": txn_id,
                "local_amount_fen": doc["local_amount_fen"], "channel_amount_fen": channel_amount},
                self.now, session=session)
            return True

        if in_transaction(self.db, store):  # new mismatches only: a re-run finds them stored and is quiet
            metrics.RECONCILIATION_MISMATCHES.labels(run["channel"], verdict.category).inc()

    def _plan_duplicates(self, run, mine):
        """Two successes for one plan (across orders, days or channels): the later is flagged for refund.
        ``mine``: this chunk's payments the file listed as succeeded (their plan ids never change)."""
        plan_ids = sorted({p for doc in mine for p in doc.get("plan_ids") or ()})
        if not plan_ids:
            return
        sharing = list(self.db.payments.find({"plan_ids": {"$in": plan_ids}, "status": domain.SUCCEEDED},
                                             {"plan_ids": 1, "paid_at": 1, "amount_fen": 1, "channel_txn_id": 1,
                                              "order_id": 1, "channel": 1}))
        if len(sharing) == len(mine):
            return  # the usual case: every plan paid once
        verdict = rec.Verdict(rec.DUPLICATE_PAYMENT, rec.FLAGGED_REFUND, record=True)
        for duplicate, kept in rec.plan_duplicates(sharing):
            self.db.reconciliation_items.update_one(
                {"_id": f"{run['_id']}:dup:{duplicate['_id']}"},
                {"$setOnInsert": self._item(run["_id"], 10 ** 12, verdict, duplicate,
                                            extra={"kept_payment_id": kept["_id"]})}, upsert=True)
            self._record(run, verdict, duplicate, txn_id=duplicate.get("channel_txn_id"),
                         channel_amount=duplicate.get("amount_fen"))

    # ---- after the file: what it did not list ---------------------------------------------------------------
    def _absent(self, run, settle_date):
        run_id, channel = run["_id"], run["channel"]
        window = [(settle_date - timedelta(days=d)).isoformat() for d in range(rec.CARRY_OVER_DAYS, -1, -1)]
        seq = 2 * 10 ** 12
        for payment in self.db.payments.find({"channel": channel, "statement_date": None,
                                              "settle_date": {"$gte": window[0], "$lte": window[-1]},
                                              "status": domain.SUCCEEDED}).sort("_id", ASCENDING):
            verdict = rec.classify_missing_success(date.fromisoformat(payment["settle_date"]), settle_date)
            self.db.reconciliation_items.update_one(
                {"_id": f"{run_id}:missing:{payment['_id']}"},
                {"$setOnInsert": self._item(run_id, seq, verdict, payment)}, upsert=True)
            if verdict.record:
                self._record(run, verdict, payment)
        end = datetime.combine(settle_date + timedelta(days=1), datetime.min.time(), SHANGHAI)
        completed = {date.fromisoformat(r["date"]) for r in self.db.reconciliations.find(
            {"channel": channel, "status": COMPLETED,
             "date": {"$gte": (settle_date - timedelta(days=40)).isoformat(), "$lte": settle_date.isoformat()}},
            {"date": 1})}
        unsettled = 0
        for payment in self.db.payments.find({"channel": channel, "status": {"$in": list(domain.OPEN)},
                                              "created_at": {"$lt": end}}).sort("_id", ASCENDING):
            verdict = rec.classify_absent_open(rec.local_date(payment["created_at"]), settle_date, completed)
            if verdict.category == rec.UNSETTLED:
                unsettled += 1
                continue
            self.db.reconciliation_items.update_one(
                {"_id": f"{run_id}:absent:{payment['_id']}"},
                {"$setOnInsert": self._item(run_id, seq + 1, verdict, payment)}, upsert=True)
            self.service._move_with_event(payment, domain.OPEN, domain.FAILED, self.now, "payment.failed",
                                          {"reason": f"reconciliation:{run['date']}:absent"},
                                          extra={"failure_code": "absent"})
            self._record(run, verdict, payment)
        _renew(self.db, run_id, {"unsettled": unsettled})

    # ---- the end ----------------------------------------------------------------------------------------------
    def _counts(self, run_id):
        run = self.db.reconciliations.find_one({"_id": run_id})
        checkpoint = run.get("checkpoint") or {"matched": 0, "skipped": 0}
        counts = {"matched": checkpoint["matched"]}
        for category in rec.CATEGORIES:
            counts[category] = self.db.reconciliation_items.count_documents({"run_id": run_id, "category": category})
        counts["skipped"], counts["unsettled"] = checkpoint["skipped"], run.get("unsettled", 0)
        counts["lines"] = (run.get("statement") or {}).get("lines", 0)
        return counts

    def _complete(self, run):
        counts = self._counts(run["_id"])

        def complete(session):
            done = self.db.reconciliations.update_one(
                {"_id": run["_id"], "status": RUNNING, "lease_owner": INSTANCE},
                {"$set": {"status": COMPLETED, "counts": counts, "finished_at": self.now,
                          "progress.lines_done": counts["lines"]}}, session=session)
            if not done.modified_count:
                raise LostLease(run["_id"])
            self.db.reconciliation_locks.delete_one({"_id": f"{run['channel']}:{run['date']}",
                                                     "run_id": run["_id"]}, session=session)
            self.outbox.add("reconciliation.completed", {
                "reconciliation_id": run["_id"], "channel": run["channel"], "settle_date": run["date"],
                "counts": counts}, self.now, session=session)

        in_transaction(self.db, complete)
        log.info("reconciliation %s (%s %s) completed: %s", run["_id"], run["channel"], run["date"], counts)
        return COMPLETED

    def _fail(self, run, error):
        log.error("reconciliation %s (%s %s) failed, nothing applied: %s", run["_id"], run["channel"], run["date"],
                  error)

        def fail(session):
            done = self.db.reconciliations.update_one(
                {"_id": run["_id"], "status": RUNNING, "lease_owner": INSTANCE},
                {"$set": {"status": FAILED, "error": error[:500], "finished_at": self.now}}, session=session)
            if not done.modified_count:
                raise LostLease(run["_id"])
            self.db.reconciliation_locks.delete_one({"_id": f"{run['channel']}:{run['date']}",
                                                     "run_id": run["_id"]}, session=session)
            self.outbox.add("reconciliation.failed", {
                "reconciliation_id": run["_id"], "channel": run["channel"], "settle_date": run["date"],
                "error": error[:500]}, self.now, session=session)

        in_transaction(self.db, fail)
        return FAILED
