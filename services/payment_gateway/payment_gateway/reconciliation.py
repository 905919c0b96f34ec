"""Next-day reconciliation, pure: reading a channel's settlement file and deciding, line by line, what it means.

No pymongo, no Nameko: the run engine (``reconciler.py``) feeds it lines and payment documents (plain dicts) and
carries out what it decides.

The settlement file (one per channel and settlement date; ``|``-delimited; every line ends with ``\\n``)::

    H|UPSTMT|1.0|UTF-8|<merId>|<merName>|<settleDate YYYYMMDD>|<generated YYYYMMDDhhmmss>
    D|<queryId>|<orderId>|<txnType>|<txnTime YYYYMMDDhhmmss>|<txnAmt>|<settleAmt>|<respCode>|<settleDate YYYYMMDD>
    ...
    T|<detail lines>|<success lines>|<sum of settleAmt over success lines, fen>|EOF

The header declares the encoding (``UTF-8`` or ``GBK``: the merchant name is Chinese); the whole file must decode
with it. ``orderId`` is our payment id. Success lines (``respCode`` 00/A6) are money the channel took and will
settle; other lines are transactions that ended without money (failed, closed unpaid) and may have an empty
``queryId``. A file whose header, any line or the totals do not check is refused as a whole (StatementError).
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from servicekit.clock import SHANGHAI

FORMAT, VERSION = "UPSTMT", "1.0"
ENCODINGS = {"UTF-8": "utf-8", "GBK": "gbk"}
DETAIL_FIELDS = 9  # "D" + 8
SUCCESS_CODES = {"00", "A6"}
MAX_AMOUNT_DIGITS = 12

# ---- categories (DOMAIN.md), and what we add ---------------------------------------------------------------
MATCHED = "matched"
CHANNEL_MISSING = "CHANNEL_MISSING"
LOCAL_MISSING = "LOCAL_MISSING"
LOCAL_NOT_SUCCESS = "LOCAL_NOT_SUCCESS"
LOCAL_NOT_FAILED = "LOCAL_NOT_FAILED"
AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
DUPLICATE_PAYMENT = "DUPLICATE_PAYMENT"
# Ours still open (unknown/processing), the channel's file says it ended without money: the run fails it.
SETTLED_FAILED = "SETTLED_FAILED"
CATEGORIES = (CHANNEL_MISSING, LOCAL_MISSING, LOCAL_NOT_SUCCESS, LOCAL_NOT_FAILED, AMOUNT_MISMATCH,
              DUPLICATE_PAYMENT, SETTLED_FAILED)
# Not mismatches: counted, never listed.
SKIPPED = "skipped"            # a failed channel line for a payment we never had: no money moved
UNSETTLED = "unsettled"        # ours open and absent from the file: waits for the next files

# resolutions
MARKED_PAID = "marked_paid"
MARKED_FAILED = "marked_failed"
CARRIED_OVER = "carried_over"
FLAGGED = "flagged"
FLAGGED_REFUND = "flagged_refund"
FLAGGED_NEVER_PAID = "flagged_never_paid"
FLAGGED_NO_REVERSAL = "flagged_never_reversed"
FLAGGED_ORDER_CLOSED = "flagged_order_closed"

# local payment statuses (payment_gateway.domain; repeated to keep this module free of the service)
OPEN = ("creating", "processing", "unknown")
SUCCEEDED, FAILED, ABANDONED, MISMATCH = "succeeded", "failed", "abandoned", "mismatch"

CARRY_OVER_DAYS = 3


class StatementError(ValueError):
    """The file cannot be trusted; nothing of it is applied. ``line_no`` is 1-based (0: the file as a whole)."""

    def __init__(self, message, line_no=0):
        super().__init__(f"line {line_no}: {message}" if line_no else message)
        self.line_no = line_no


@dataclass(frozen=True)
class Header:
    encoding: str
    merchant_id: str
    merchant_name: str
    settle_date: date
    generated_at: datetime


@dataclass(frozen=True)
class Line:
    line_no: int
    channel_txn_id: str
    payment_id: str
    txn_time: datetime
    amount_fen: int
    settle_amount_fen: int
    resp_code: str
    settle_date: date

    @property
    def success(self):
        return self.resp_code in SUCCESS_CODES


@dataclass(frozen=True)
class Summary:
    count: int
    success_count: int
    success_amount_fen: int


def _strip_eol(raw: bytes, line_no: int) -> bytes:
    if not raw.endswith(b"\n"):
        raise StatementError("truncated: the line has no end", line_no)
    raw = raw[:-1]
    return raw[:-1] if raw.endswith(b"\r") else raw


def _amount(text, line_no, what):
    if not text.isdigit() or len(text) > MAX_AMOUNT_DIGITS:
        raise StatementError(f"bad {what} {text[:20]!r}", line_no)
    return int(text)


def _day(text, line_no, what):
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise StatementError(f"bad {what} {text[:20]!r}", line_no) from None


def _time(text, line_no, what):
    try:
        if len(text) != 14 or not text.isdigit():
            raise ValueError
        return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI)
    except ValueError:
        raise StatementError(f"bad {what} {text[:20]!r}", line_no) from None


def parse_header(raw: bytes, expected_date: date | None = None, merchant_id: str | None = None) -> Header:
    text = _strip_eol(raw, 1)
    parts = text.split(b"|")
    if len(parts) != 8 or parts[0] != b"H":
        raise StatementError("bad header: not H|UPSTMT|1.0|<encoding>|…", 1)
    try:
        declared = parts[3].decode("ascii")
    except UnicodeDecodeError:
        raise StatementError("bad header: encoding field", 1) from None
    if declared not in ENCODINGS:
        raise StatementError(f"bad header: unsupported encoding {declared[:20]!r}", 1)
    try:
        fields = [p.decode(ENCODINGS[declared]) for p in parts]
    except UnicodeDecodeError:
        raise StatementError(f"wrong encoding: the header is not {declared}", 1) from None
    if fields[1] != FORMAT or fields[2] != VERSION:
        raise StatementError(f"bad header: format {fields[1][:20]!r} version {fields[2][:10]!r}", 1)
    header = Header(declared, fields[4], fields[5], _day(fields[6], 1, "settlement date"),
                    _time(fields[7], 1, "generation time"))
    if expected_date is not None and header.settle_date != expected_date:
        raise StatementError(f"bad header: the file is for {header.settle_date}, not {expected_date}", 1)
    if merchant_id is not None and header.merchant_id != merchant_id:
        raise StatementError("bad header: another merchant's file", 1)
    return header


def parse_detail(raw: bytes, line_no: int, encoding: str) -> Line:
    try:
        text = _strip_eol(raw, line_no).decode(ENCODINGS[encoding])
    except UnicodeDecodeError:
        raise StatementError(f"wrong encoding: not {encoding}", line_no) from None
    parts = text.split("|")
    if len(parts) != DETAIL_FIELDS or parts[0] != "D":
        raise StatementError(f"truncated or malformed line: {len(parts)} fields", line_no)
    _, txn_id, payment_id, _txn_type, txn_time, amount, settle_amount, code, settle = parts
    line = Line(line_no, txn_id, payment_id, _time(txn_time, line_no, "txnTime"),
                _amount(amount, line_no, "txnAmt"), _amount(settle_amount, line_no, "settleAmt"), code,
                _day(settle, line_no, "settleDate"))
    if not payment_id or len(payment_id) > 64 or not code:
        raise StatementError("missing orderId or respCode", line_no)
    if line.success and not txn_id:
        raise StatementError("a success line without queryId", line_no)
    return line


def parse_summary(raw: bytes, line_no: int) -> Summary:
    text = _strip_eol(raw, line_no)
    parts = text.split(b"|")
    if len(parts) != 5 or parts[0] != b"T" or parts[4] != b"EOF":
        raise StatementError("bad summary line", line_no)
    try:
        values = [_amount(p.decode("ascii"), line_no, "total") for p in parts[1:4]]
    except UnicodeDecodeError:
        raise StatementError("bad summary line", line_no) from None
    return Summary(*values)


class Totals:
    """Running totals, checked against the summary line."""

    def __init__(self):
        self.count = self.success_count = self.success_amount_fen = 0

    def add(self, line: Line):
        self.count += 1
        if line.success:
            self.success_count += 1
            self.success_amount_fen += line.settle_amount_fen

    def check(self, summary: Summary, line_no: int):
        ours = (self.count, self.success_count, self.success_amount_fen)
        theirs = (summary.count, summary.success_count, summary.success_amount_fen)
        if ours != theirs:
            raise StatementError(f"totals do not match: lines/successes/amount {ours} in the file, {theirs} "
                                 "in its summary", line_no)


def read_statement(raw_lines, expected_date=None, merchant_id=None):
    """Yield the header, then every detail Line, then the Summary, checking as it goes; raises StatementError
    at the first fault (including a missing summary, anything after it, or totals that differ).
    ``raw_lines`` is any iterable of byte lines (a file opened in binary mode): memory stays flat."""
    iterator = iter(raw_lines)
    first = next(iterator, None)
    if first is None:
        raise StatementError("empty file")
    header = parse_header(first, expected_date, merchant_id)
    yield header
    totals, summary, line_no = Totals(), None, 1
    for raw in iterator:
        line_no += 1
        if summary is not None:
            raise StatementError("content after the summary line", line_no)
        if raw.startswith(b"T|"):
            summary = parse_summary(raw, line_no)
            totals.check(summary, line_no)
            continue
        line = parse_detail(raw, line_no, header.encoding)
        totals.add(line)
        yield line
    if summary is None:
        raise StatementError("truncated: no summary line", line_no)
    yield summary


def check_statement(raw_lines, expected_date=None, merchant_id=None):
    """The first pass: the whole file checked, nothing applied. Returns (header, summary)."""
    header = summary = None
    for item in read_statement(raw_lines, expected_date, merchant_id):
        if isinstance(item, Header):
            header = item
        elif isinstance(item, Summary):
            summary = item
    return header, summary


# ---- deciding ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    category: str
    resolution: str | None = None
    action: str | None = None  # "succeed" | "fail" | "mismatch" | None
    record: bool = False       # a mismatch for ops: stored and published


def classify_line(line: Line, payment: dict | None, channel: str) -> Verdict:
    """What one statement line means against our payment for its orderId (None: we have none)."""
    if payment is not None and payment.get("channel") != channel:
        payment = None  # an orderId of ours paid through another channel is not this channel's to settle
    status = payment["status"] if payment else None
    if not line.success:
        if payment is None:
            return Verdict(SKIPPED)
        if status == SUCCEEDED and (not line.channel_txn_id or line.channel_txn_id == payment.get("channel_txn_id")):
            return Verdict(LOCAL_NOT_FAILED, FLAGGED_NO_REVERSAL, record=True)
        if status in OPEN:
            return Verdict(SETTLED_FAILED, MARKED_FAILED, action="fail", record=True)
        return Verdict(MATCHED)  # failed, abandoned, mismatch, or a failed retry of a payment that succeeded
    if payment is None:
        return Verdict(LOCAL_MISSING, FLAGGED_REFUND, record=True)
    if line.amount_fen != payment["amount_fen"]:
        return Verdict(AMOUNT_MISMATCH, FLAGGED_NEVER_PAID, action="mismatch" if status in OPEN else None,
                       record=True)
    if status == SUCCEEDED:
        if payment.get("channel_txn_id") == line.channel_txn_id:
            return Verdict(MATCHED)
        # the same payment charged twice: the transaction we did not apply is the one to refund
        return Verdict(DUPLICATE_PAYMENT, FLAGGED_REFUND, record=True)
    if status in OPEN:
        return Verdict(LOCAL_NOT_SUCCESS, MARKED_PAID, action="succeed", record=True)
    # failed / abandoned / mismatch: the order has ended otherwise; the money goes back through ops
    return Verdict(LOCAL_NOT_SUCCESS, FLAGGED_ORDER_CLOSED, record=True)


def local_date(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


def classify_missing_success(settle_date: date, run_date: date, carry_days=CARRY_OVER_DAYS) -> Verdict:
    """A success of ours (settled ``settle_date``) that no file up to ``run_date`` has listed: midnight timing
    may put it in a later file, so it is carried over ``carry_days`` days, then flagged for ops."""
    if (run_date - settle_date).days >= carry_days:
        return Verdict(CHANNEL_MISSING, FLAGGED, record=True)
    return Verdict(CHANNEL_MISSING, CARRIED_OVER)


def classify_absent_open(created: date, run_date: date, completed_dates) -> Verdict:
    """Ours still open (unknown/processing), absent from this file. Money taken would be in the file of the day
    it was paid: the day it was opened, or the next (paid after midnight). Once the files of both days are in
    (their runs completed, this one counting as done), the channel never took it: fail it, plans go free."""
    if created >= run_date:
        return Verdict(UNSETTLED, CARRIED_OVER)
    needed = {created, created + timedelta(days=1)}
    done = set(completed_dates) | {run_date}
    if needed <= done:
        return Verdict(SETTLED_FAILED, MARKED_FAILED, action="fail", record=True)
    return Verdict(UNSETTLED, CARRIED_OVER)


def plan_duplicates(payments):
    """Succeeded payments sharing a plan (two successes for one plan): every one but the first paid (by paid_at,
    then id) is a duplicate to refund. ``payments``: dicts with _id, plan_ids, paid_at. Returns
    [(duplicate, kept)]."""
    first_by_plan = {}
    for payment in sorted(payments, key=lambda p: (p.get("paid_at") or datetime.max.replace(tzinfo=SHANGHAI),
                                                   p["_id"])):
        for plan_id in payment.get("plan_ids") or ():
            first_by_plan.setdefault(plan_id, payment)
    found = {}
    for payment in payments:
        for plan_id in payment.get("plan_ids") or ():
            kept = first_by_plan[plan_id]
            if kept["_id"] != payment["_id"]:
                found.setdefault(payment["_id"], (payment, kept))
    return sorted(found.values(), key=lambda pair: pair[0]["_id"])


def mismatch_id(channel, category, payment_id, channel_txn_id):
    """One mismatch record per what it is about: a re-run finds the same record and publishes nothing new."""
    return f"{channel}:{category}:{payment_id or '-'}:{channel_txn_id or '-'}"
