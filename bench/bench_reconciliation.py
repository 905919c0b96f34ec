"""Next-day reconciliation: a generated settlement file against matching payments.

Two figures, printed apart:
- matching itself: the file's check pass plus the apply pass's parse + classify of every line, against payments
  held by a stand-in lookup, on RECON_BENCH_LINES lines (default 1,000,000): lines/s and peak Python memory
  (tracemalloc) at a tenth and at the whole file, to show that memory stays flat in the file's size.
- database work: the real run engine (payment_gateway.reconciler) on the embedded MongoDB-compatible server
  against RECON_BENCH_DB_N payments (default 20,000; inserting 1,000,000 into the embedded server is too slow
  here, it slows as collections grow): lines/s of the whole run, the share that is database work, commands
  per 1,000 lines, and the process's peak RSS.
Measures; never asserts.
"""
import os
import resource
import shutil
import tempfile
import time
import tracemalloc
import uuid
from datetime import date, datetime, timedelta

from pymongo import MongoClient

from bench.bench_plans import CommandCounter, _database

DAY = date(2026, 3, 11)
MER = "898230100000001"


def write_statement(path, n, prefix="P"):
    """n success lines of 350.00 for payment ids <prefix><i>, streamed to disk."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(f"H|UPSTMT|1.0|UTF-8|{MER}|国家税务总局黑龙江省税务局|{DAY:%Y%m%d}|{DAY:%Y%m%d}235959\n")
        for i in range(n):
            out.write(f"D|Q{i:012d}|{prefix}{i}|01|{DAY:%Y%m%d}101500|35000|35000|00|{DAY:%Y%m%d}\n")
        out.write(f"T|{n}|{n}|{35000 * n}|EOF\n")


def match_only(path, n):
    """The engine's two passes without a database: check the whole file, then read and classify every line."""
    from payment_gateway import reconciliation as rec

    with open(path, "rb") as handle:
        rec.check_statement(handle, DAY, MER)
    counts = {}
    payment = {"_id": None, "status": "succeeded", "amount_fen": 35000, "channel": "unionpay"}
    with open(path, "rb") as handle:
        for item in rec.read_statement(handle, DAY, MER):
            if isinstance(item, rec.Line):
                payment["_id"], payment["channel_txn_id"] = item.payment_id, item.channel_txn_id
                verdict = rec.classify_line(item, payment, "unionpay")
                counts[verdict.category] = counts.get(verdict.category, 0) + 1
    assert counts.get("matched") == n, counts  # a wrong bench is worse than none
    return counts


def run(report):
    lines = int(os.environ.get("RECON_BENCH_LINES", "1000000"))
    db_n = int(os.environ.get("RECON_BENCH_DB_N", "20000"))
    workdir = tempfile.mkdtemp(prefix="recon-bench-")
    try:
        path = os.path.join(workdir, "statement.txt")
        started = time.perf_counter()
        write_statement(path, lines)
        report.figure("statement generated (lines)", lines)
        report.figure("statement size", round(os.path.getsize(path) / 1e6, 1), "MB")
        report.figure("generating it", time.perf_counter() - started, "s")

        started = time.perf_counter()
        match_only(path, lines)
        seconds = time.perf_counter() - started
        report.figure(f"matching only, {lines:,} lines (check + apply pass, no DB)", lines / seconds, "lines/s")

        small = os.path.join(workdir, "small.txt")
        write_statement(small, max(1, lines // 10))
        for label, file, count in (("a tenth", small, max(1, lines // 10)), ("the whole file", path, lines)):
            tracemalloc.start()
            match_only(file, count)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            report.figure(f"matching only: peak Python memory, {label} ({count:,} lines)", round(peak / 1024, 1),
                          "KiB")
        _database_part(report, workdir, db_n)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _Adapter:
    merchant_id = MER

    def __init__(self, path):
        self.path = path

    def fetch_statement(self, settle_date, destination):
        shutil.copyfile(self.path, destination)


class _Service:
    """The three paths the engine calls on the service; an all-matched file needs only transactions."""

    def __init__(self, client):
        self.client = client

    def _transaction(self, callback):
        with self.client.start_session() as session:
            return session.with_transaction(callback)

    def _succeed(self, *args):  # pragma: no cover - not reached by an all-matched file
        raise AssertionError("the bench file matches everything")

    _move_with_event = _succeed


def _database_part(report, workdir, n):
    from payment_gateway import reconciler
    from payment_gateway.repository import ensure_indexes
    from servicekit.clock import SHANGHAI

    uri, server = _database()
    counter = CommandCounter()
    try:
        client = MongoClient(uri, tz_aware=True, event_listeners=[counter])
        db = client[f"bench_recon_{uuid.uuid4().hex[:6]}"]
        ensure_indexes(db)
        paid_at = datetime(2026, 3, 11, 10, 15, tzinfo=SHANGHAI)
        started = time.perf_counter()
        batch = []
        for i in range(n):
            batch.append({"_id": f"P{i}", "order_id": f"O{i}", "payer_id": "bench", "channel": "unionpay",
                          "amount_fen": 35000, "status": "succeeded", "created_at": paid_at, "dated_at": paid_at,
                          "paid_at": paid_at, "channel_txn_id": f"Q{i:012d}", "settle_date": DAY.isoformat(),
                          "statement_date": None, "plan_ids": [f"plan-{i}"]})
            if len(batch) == 1000:
                db.payments.insert_many(batch, ordered=False)
                batch = []
        if batch:
            db.payments.insert_many(batch, ordered=False)
        insert_seconds = time.perf_counter() - started
        report.figure(f"database: {n:,} payments inserted (setup, not reconciliation)", n / insert_seconds,
                      "docs/s")

        path = os.path.join(workdir, f"db-{n}.txt")
        write_statement(path, n)
        started = time.perf_counter()
        match_only(path, n)
        matching_seconds = time.perf_counter() - started

        now = datetime.now(SHANGHAI)
        run_id = reconciler.start_run(db, "unionpay", DAY, now)
        run = reconciler.claim_next(db)
        counter.count = 0
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        status = reconciler.Reconciler(db, _Service(client), _Adapter(path), now, workdir).run(run)
        total = time.perf_counter() - started
        result = db.reconciliations.find_one({"_id": run_id})
        report.figure(f"database: whole run on {n:,} lines ({status}, matched {result['counts'].get('matched')})",
                      n / total, "lines/s")
        report.figure("database: time in database work (run minus matching alone)",
                      max(0.0, total - matching_seconds), "s")
        report.figure("database: share of the run that is database work",
                      f"{100 * max(0.0, total - matching_seconds) / total:.0f} %")
        report.figure("database: commands per 1,000 lines", round(counter.count * 1000 / n, 1))
        report.figure("database: process peak RSS (ru_maxrss; before the run)",
                      f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
                      f"({rss_before / 1024:.0f} MiB)")
        # a re-run: the same file against the same payments, nothing left to change
        run_id = reconciler.start_run(db, "unionpay", DAY, now + timedelta(seconds=1))
        started = time.perf_counter()
        reconciler.Reconciler(db, _Service(client), _Adapter(path), now, workdir).run(reconciler.claim_next(db))
        report.figure(f"database: re-run on {n:,} lines", n / (time.perf_counter() - started), "lines/s")
        client.drop_database(db.name)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
