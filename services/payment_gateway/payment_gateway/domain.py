"""Payment rules, pure: channel availability, what a channel's answer means, the status-query schedule.

Payment statuses: creating (channel being asked) → processing (payer can pay) → succeeded | failed | unknown;
unknown → succeeded | failed; abandoned (never reached the order), mismatch (amount differs: for ops, never paid).
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from servicekit.clock import SHANGHAI

CREATING, PROCESSING, SUCCEEDED, FAILED, UNKNOWN = "creating", "processing", "succeeded", "failed", "unknown"
ABANDONED, MISMATCH = "abandoned", "mismatch"
OPEN = (CREATING, PROCESSING, UNKNOWN)  # the outcome may still change; the status query keeps asking
FINAL = (SUCCEEDED, FAILED, ABANDONED, MISMATCH)

DEFAULT_BACKOFF = (1, 2, 4, 8, 16, 32)
DEFAULT_CHANNELS = {"unionpay": {"name": "云闪付", "adapter": "unionpay"}}
DEFAULT_AVAILABILITY = {"default": ["unionpay"]}


class RuleViolation(ValueError):
    def __init__(self, code, message=None, details=None):
        super().__init__(code)
        self.code, self.message, self.details = code, message, details or {}


def parse_backoff(text, default=DEFAULT_BACKOFF):
    if text in (None, ""):
        return tuple(default)
    if isinstance(text, (list, tuple)):
        values = tuple(float(v) for v in text)
    else:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
    if not values or any(v <= 0 for v in values):
        raise ValueError("back-off needs positive seconds")
    return values


def channels_for(catalog: dict, availability: dict, region_code: str | None, insurance_type: str):
    """Channels offered for a region and insurance type, by the most specific availability key:
    "<region prefix>/<type>" (6, 4, 2 digits), "<type>", "<region prefix>", "default"."""
    region = region_code or ""
    prefixes = [region[:n] for n in (6, 4, 2) if len(region) >= n]
    keys = [f"{p}/{insurance_type}" for p in prefixes] + [insurance_type] + prefixes + ["default"]
    codes = next((availability[k] for k in keys if k in availability), [])
    return [{"code": code, "name": catalog[code]["name"]} for code in codes if code in catalog]


@dataclass(frozen=True)
class ChannelResult:
    """A channel's word on one payment (from a notification or a status query)."""
    payment_id: str
    outcome: str  # "success" | "failed" | "processing" | "not_found"
    channel_txn_id: str | None = None
    amount_fen: int | None = None
    paid_at: datetime | None = None
    settle_date: str | None = None  # YYYY-MM-DD
    code: str = ""


SUCCESS_CODES = {"00", "A6"}
PROCESSING_CODES = {"03", "04", "05"}
NOT_FOUND_CODES = {"34"}


def outcome_of(resp_code: str) -> str:
    if resp_code in SUCCESS_CODES:
        return "success"
    if resp_code in PROCESSING_CODES:
        return "processing"
    if resp_code in NOT_FOUND_CODES:
        return "not_found"
    return "failed"


def parse_txn_time(text: str) -> datetime:
    """ACP txnTime: YYYYMMDDhhmmss in Beijing time."""
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI)


def settle_date_of(settle_mmdd: str, txn_time: datetime) -> str:
    """ACP's settleDate is MMDD; the year is the transaction's, or the next one across New Year."""
    month, day = int(settle_mmdd[:2]), int(settle_mmdd[2:4])
    year = txn_time.year + (1 if txn_time.month == 12 and month == 1 else 0)
    return date(year, month, day).isoformat()


def parse_amount_fen(text: str) -> int:
    if not isinstance(text, str) or not text.isdigit() or len(text) > 12:
        raise ValueError(f"bad txnAmt {text!r}")
    return int(text)


def result_from_fields(fields: dict, code_field="respCode") -> ChannelResult:
    """A notification (or a query answer's original transaction) as a ChannelResult; ValueError if malformed."""
    try:
        payment_id = fields["orderId"]
        code = fields[code_field]
        outcome = outcome_of(code)
        if outcome == "not_found":
            return ChannelResult(payment_id, outcome, code=code)
        txn_time = parse_txn_time(fields["txnTime"])
        amount = parse_amount_fen(fields["txnAmt"])
        txn_id = fields.get("queryId") or None
        settle = settle_date_of(fields["settleDate"], txn_time) if fields.get("settleDate") else None
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"malformed channel message: {type(exc).__name__} {exc}") from None
    if outcome == "success" and not txn_id:
        raise ValueError("a success without queryId")
    return ChannelResult(payment_id, outcome, txn_id, amount, txn_time if outcome == "success" else None, settle,
                         code)


def next_query(created_or_last: datetime, attempts_done: int, backoff) -> datetime | None:
    """When to ask the channel next, or None when the schedule is exhausted (→ unknown)."""
    if attempts_done >= len(backoff):
        return None
    return created_or_last + timedelta(seconds=backoff[attempts_done])


def parse_date_range(paid_from: str, paid_to: str, max_days=366):
    """(first, last) dates for 第三方支付情况; RuleViolation(VALIDATION_ERROR) on bad input."""
    errors = {}
    parsed = {}
    for name, value in (("paid_from", paid_from), ("paid_to", paid_to)):
        try:
            parsed[name] = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
        except ValueError:
            parsed[name] = None
        if parsed[name] is None:
            errors[name] = ["日期格式应为YYYY-MM-DD"]
    if errors:
        raise RuleViolation("VALIDATION_ERROR", "支付日期不正确", errors)
    first, last = parsed["paid_from"], parsed["paid_to"]
    if first > last:
        raise RuleViolation("VALIDATION_ERROR", "起始日期不能晚于结束日期", {"paid_from": ["不能晚于结束日期"]})
    if (last - first).days >= max_days:
        raise RuleViolation("VALIDATION_ERROR", f"查询区间不能超过{max_days}天", {"paid_to": ["查询区间过长"]})
    start = datetime.combine(first, datetime.min.time(), SHANGHAI)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), SHANGHAI)
    return start, end
