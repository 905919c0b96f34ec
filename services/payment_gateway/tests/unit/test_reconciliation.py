"""Reconciliation, pure: the settlement file's checks and the category of every line, on hand-made statements."""
from datetime import date, datetime

import pytest

from payment_gateway import reconciliation as rec
from servicekit.clock import SHANGHAI
from simulators.unionpay import UnionPay

DAY = date(2026, 3, 11)
MER = "898230100000001"


def statement(details, encoding="UTF-8", totals=None, merchant_name="国家税务总局黑龙江省税务局", day="20260311"):
    """A file as bytes: details are (queryId, orderId, amount_fen, respCode)."""
    lines = [f"H|UPSTMT|1.0|{encoding}|{MER}|{merchant_name}|{day}|20260312060000"]
    for query_id, order_id, amount, code in details:
        settled = amount if code == "00" else 0
        lines.append(f"D|{query_id}|{order_id}|01|20260311101500|{amount}|{settled}|{code}|{day}")
    successes = [d for d in details if d[3] == "00"]
    count, ok, total = totals or (len(details), len(successes), sum(d[2] for d in successes))
    lines.append(f"T|{count}|{ok}|{total}|EOF")
    codec = rec.ENCODINGS.get(encoding, "utf-8")
    return [(line + "\n").encode(codec) for line in lines]


def read(raw_lines):
    return list(rec.read_statement(raw_lines, DAY, MER))


def pay(pid, status="succeeded", amount=35000, txn="Q1", settle="2026-03-11", **extra):
    return {"_id": pid, "status": status, "amount_fen": amount, "channel_txn_id": txn, "channel": "unionpay",
            "settle_date": settle, **extra}


# ---- the file ---------------------------------------------------------------------------------------------------
def test_a_good_file_reads_header_lines_and_summary():
    items = read(statement([("Q1", "P1", 35000, "00"), ("", "P2", 12000, "01")]))
    header, lines, summary = items[0], items[1:-1], items[-1]
    assert header.settle_date == DAY and header.merchant_name == "国家税务总局黑龙江省税务局"
    assert [(l.payment_id, l.success, l.amount_fen) for l in lines] == [("P1", True, 35000), ("P2", False, 12000)]
    assert summary == rec.Summary(2, 1, 35000)


def test_a_gbk_file_declared_gbk_reads():
    header, summary = rec.check_statement(statement([("Q1", "P1", 100, "00")], encoding="GBK"), DAY, MER)
    assert header.encoding == "GBK" and header.merchant_name == "国家税务总局黑龙江省税务局"


@pytest.mark.parametrize("breakage, message", [
    (lambda f: [b"X|UPSTMT|1.0|UTF-8|x\n"] + f[1:], "bad header"),
    (lambda f: [f[0].replace(b"UPSTMT", b"OTHER")] + f[1:], "bad header"),
    (lambda f: [f[0].replace(b"20260311|", b"20260310|")] + f[1:], "not 2026-03-11"),
    (lambda f: [f[0].replace(MER.encode(), b"898230100000999")] + f[1:], "another merchant"),
    (lambda f: [f[0].replace(b"UTF-8", b"LATIN1")] + f[1:], "unsupported encoding"),
    (lambda f: f[:-1], "no summary"),                                         # truncated file
    (lambda f: f[:2] + [f[2][:20]], "truncated"),                             # cut mid-line, no end of line
    (lambda f: f[:2] + [b"D|Q2|P2|01|20260311\n"] + f[3:], "fields"),        # a line missing its fields
    (lambda f: f + [b"D|Q9|P9|01|20260311101500|1|1|00|20260311\n"], "after the summary"),
    (lambda f: f[:2] + [f[2].replace(b"|35000|35000|", b"|35000|3500x|")] + f[3:], "settleAmt"),
    (lambda f: [], "empty"),
])
def test_a_malformed_file_is_refused_whole(breakage, message):
    good = statement([("Q1", "P1", 12000, "00"), ("Q2", "P2", 35000, "00")])
    with pytest.raises(rec.StatementError, match=message):
        read(breakage(good))


@pytest.mark.parametrize("totals", [(3, 2, 47000), (2, 1, 47000), (2, 2, 47001)])
def test_wrong_totals_are_refused(totals):
    with pytest.raises(rec.StatementError, match="totals do not match"):
        read(statement([("Q1", "P1", 12000, "00"), ("Q2", "P2", 35000, "00")], totals=totals))


def test_wrong_encoding_is_refused():
    # declared UTF-8, written in GBK (the merchant name's bytes do not decode)
    gbk = statement([("Q1", "P1", 100, "00")], encoding="GBK")
    lying = [gbk[0].replace(b"|GBK|", b"|UTF-8|")] + gbk[1:]
    with pytest.raises(rec.StatementError, match="wrong encoding"):
        read(lying)
    with pytest.raises(rec.StatementError, match="wrong encoding"):
        read(statement([("Q1", "P1", 100, "00")])[:1] + ["D|Q1|P1|01|20260311101500|100|100|00|20260311\n"
                                                          .replace("P1", "付").encode("gbk")]
             + statement([("Q1", "P1", 100, "00")])[2:])


def test_the_check_pass_reads_everything_before_anything_is_applied():
    # the fault is on the last line: the caller sees it before it would have applied the first one
    broken = statement([("Q1", "P1", 100, "00"), ("Q2", "P2", 100, "00")], totals=(2, 2, 999))
    with pytest.raises(rec.StatementError):
        rec.check_statement(broken, DAY, MER)


def test_the_simulator_serves_a_file_the_reader_accepts():
    sim = UnionPay({})
    now = datetime(2026, 3, 11, 10, 0, tzinfo=SHANGHAI)
    sim.now = lambda: now
    for pid, amount, result in (("P1", 35000, "success"), ("P2", 12000, "fail"), ("P3", 100, "double_charge")):
        sim.transactions[pid] = {"orderId": pid, "merId": MER, "merName": "税务局", "txnAmt": str(amount),
                                 "txnTime": "20260311100000", "backUrl": "http://127.0.0.1:9/", "frontUrl": "",
                                 "orderDesc": "", "state": "awaiting_payer", "result": None, "queryId": None,
                                 "settleDate": None, "paid_at": None, "opened_at": now, "notification": None,
                                 "deliveries": []}
        sim.notifier.submit = lambda *a, **k: None
        sim._settle(sim.transactions[pid], result, None)
    raw = [line.encode("utf-8") for line in sim.statement_lines(DAY, MER)]
    items = read(raw)
    lines = [i for i in items if isinstance(i, rec.Line)]
    assert sorted((l.payment_id, l.success) for l in lines) == [("P1", True), ("P2", False), ("P3", True),
                                                                 ("P3", True)]
    assert items[-1] == rec.Summary(4, 3, 35200)


# ---- every category ---------------------------------------------------------------------------------------------
def line(pid="P1", txn="Q1", amount=35000, code="00"):
    return rec.Line(2, txn, pid, datetime(2026, 3, 11, 10, tzinfo=SHANGHAI), amount, amount if code == "00" else 0,
                    code, DAY)


@pytest.mark.parametrize("the_line, payment, category, resolution, action", [
    (line(), pay("P1"), rec.MATCHED, None, None),
    (line(code="01", txn=""), pay("P1", status="failed", txn=None), rec.MATCHED, None, None),
    (line(), None, rec.LOCAL_MISSING, rec.FLAGGED_REFUND, None),
    (line(), pay("P1", status="unknown", txn=None), rec.LOCAL_NOT_SUCCESS, rec.MARKED_PAID, "succeed"),
    (line(), pay("P1", status="processing", txn=None), rec.LOCAL_NOT_SUCCESS, rec.MARKED_PAID, "succeed"),
    (line(), pay("P1", status="failed", txn=None), rec.LOCAL_NOT_SUCCESS, rec.FLAGGED_ORDER_CLOSED, None),
    (line(code="01", txn=""), pay("P1"), rec.LOCAL_NOT_FAILED, rec.FLAGGED_NO_REVERSAL, None),
    (line(code="01", txn=""), pay("P1", status="unknown", txn=None), rec.SETTLED_FAILED, rec.MARKED_FAILED, "fail"),
    (line(amount=34900), pay("P1"), rec.AMOUNT_MISMATCH, rec.FLAGGED_NEVER_PAID, None),
    (line(amount=34900), pay("P1", status="unknown", txn=None), rec.AMOUNT_MISMATCH, rec.FLAGGED_NEVER_PAID,
     "mismatch"),
    (line(txn="Q2"), pay("P1", txn="Q1"), rec.DUPLICATE_PAYMENT, rec.FLAGGED_REFUND, None),
    (line(code="01", txn=""), None, rec.SKIPPED, None, None),
    (line(), pay("P1", channel="wechat"), rec.LOCAL_MISSING, rec.FLAGGED_REFUND, None),
])
def test_every_line_gets_its_category(the_line, payment, category, resolution, action):
    verdict = rec.classify_line(the_line, payment, "unionpay")
    assert (verdict.category, verdict.resolution, verdict.action) == (category, resolution, action)
    assert verdict.record == (category in rec.CATEGORIES and resolution != rec.CARRIED_OVER)


def test_an_amount_mismatch_is_never_marked_paid():
    for status in ("unknown", "processing", "creating", "failed", "succeeded", "mismatch"):
        assert rec.classify_line(line(amount=1), pay("P1", status=status), "unionpay").action != "succeed"


def test_a_re_run_sees_what_the_first_settled_as_matched():
    payment = pay("P1", status="unknown", txn=None)
    first = rec.classify_line(line(), payment, "unionpay")
    assert first.action == "succeed"
    settled = {**payment, "status": "succeeded", "channel_txn_id": "Q1"}  # what the first run left behind
    assert rec.classify_line(line(), settled, "unionpay") == rec.Verdict(rec.MATCHED)
    failed_first = rec.classify_line(line(code="01", txn=""), payment, "unionpay")
    assert failed_first.action == "fail"
    assert rec.classify_line(line(code="01", txn=""), {**payment, "status": "failed"}, "unionpay").category == \
        rec.MATCHED


# ---- across dates -----------------------------------------------------------------------------------------------
def test_a_missing_success_is_carried_over_three_days_then_flagged():
    settled = date(2026, 3, 11)
    verdicts = [rec.classify_missing_success(settled, date(2026, 3, d)) for d in (11, 12, 13, 14, 15)]
    assert [v.resolution for v in verdicts] == [rec.CARRIED_OVER] * 3 + [rec.FLAGGED] * 2
    assert all(v.category == rec.CHANNEL_MISSING for v in verdicts)
    assert [v.record for v in verdicts] == [False, False, False, True, True]


def test_an_open_payment_absent_from_the_files_fails_only_once_both_its_days_are_in():
    opened = date(2026, 3, 11)
    assert rec.classify_absent_open(opened, opened, set()).category == rec.UNSETTLED  # may be paid after midnight
    # the next day's run, with the first day's run completed: neither file took money
    assert rec.classify_absent_open(opened, date(2026, 3, 12), {opened}).action == "fail"
    # the first day's file was never reconciled: it might list the money, so wait
    assert rec.classify_absent_open(opened, date(2026, 3, 12), set()).category == rec.UNSETTLED
    assert rec.classify_absent_open(opened, date(2026, 3, 14), {opened}).category == rec.UNSETTLED
    assert rec.classify_absent_open(opened, date(2026, 3, 14), {opened, date(2026, 3, 12)}).action == "fail"


def test_two_successes_for_one_plan_flag_the_later_for_refund():
    t = lambda h: datetime(2026, 3, 11, h, tzinfo=SHANGHAI)  # noqa: E731
    first = {"_id": "A", "plan_ids": ["plan-1", "plan-2"], "paid_at": t(9)}
    later = {"_id": "B", "plan_ids": ["plan-2"], "paid_at": t(10)}
    other = {"_id": "C", "plan_ids": ["plan-3"], "paid_at": t(8)}
    assert [(d["_id"], k["_id"]) for d, k in rec.plan_duplicates([later, other, first])] == [("B", "A")]
    assert rec.plan_duplicates([first, other]) == []


def test_mismatch_ids_are_stable_for_a_re_run():
    assert rec.mismatch_id("unionpay", "DUPLICATE_PAYMENT", "P1", "Q2") == \
        rec.mismatch_id("unionpay", "DUPLICATE_PAYMENT", "P1", "Q2")
    assert rec.mismatch_id("unionpay", "LOCAL_MISSING", None, "Q2") != rec.mismatch_id("unionpay", "LOCAL_MISSING",
                                                                                      None, "Q3")
