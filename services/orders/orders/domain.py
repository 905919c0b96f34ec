"""Order rules, pure: the sequential selection, the collection window and the order state machine.

No Nameko, no pymongo: every function takes the time and data it needs as arguments.
"""
import calendar
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from servicekit.clock import SHANGHAI


class RuleViolation(ValueError):
    """A broken order rule; ``code`` is the API error code."""

    def __init__(self, code, message=None, details=None):
        super().__init__(code)
        self.code, self.message, self.details = code, message, details or {}


# ---- the sequential rule -----------------------------------------------------------------------
def select_plans(payable, requested_ids=None, order_id=None):
    """The plans an order may take: the first k payable plans, oldest period first, without gaps.

    ``payable`` is plans.payable_plans' answer (oldest first; status "unpaid" or "locked"). ``requested_ids``
    None means all payable plans (the default selection). The order in which the client lists ids does not
    matter, the set does. A plan locked to another order is PLAN_LOCKED.
    """
    plans = sorted(payable, key=lambda p: (p["period"], p["plan_id"]))
    if not plans:
        raise RuleViolation("NO_PAYABLE_PLAN")
    if requested_ids is None:
        chosen = plans
    else:
        requested = list(requested_ids)
        if not requested:
            raise RuleViolation("NO_PAYABLE_PLAN")
        if len(set(requested)) != len(requested):
            duplicates = sorted({i for i in requested if requested.count(i) > 1})
            raise RuleViolation("VALIDATION_ERROR", "缴费计划重复选择", {"plan_ids": [f"重复: {', '.join(duplicates)}"]})
        known = {p["plan_id"] for p in plans}
        unknown = sorted(set(requested) - known)
        if unknown:
            raise RuleViolation("PLAN_SEQUENCE_VIOLATION", "所选缴费计划不存在或不可缴费",
                                {"unknown_plan_ids": unknown})
        chosen = plans[:len(requested)]
        if {p["plan_id"] for p in chosen} != set(requested):
            raise RuleViolation("PLAN_SEQUENCE_VIOLATION", details={
                "expected_plan_ids": [p["plan_id"] for p in chosen]})
    taken = [p["plan_id"] for p in chosen if p.get("status") == "locked" and p.get("order_id") != order_id]
    if taken:
        raise RuleViolation("PLAN_LOCKED", details={"plan_ids": taken})
    return chosen


# ---- the collection window ---------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """Closed from ``close_day`` at ``close_time`` (Asia/Shanghai) until the end of the month.

    A close day past the month's end (29/30/31) means the month's last day.
    """
    close_day: int = 25
    close_time: time = time(17, 0)

    @classmethod
    def parse(cls, spec):
        if isinstance(spec, Window):
            return spec
        spec = spec or {}
        hour, _, minute = str(spec.get("close_time", "17:00")).partition(":")
        window = cls(int(spec.get("close_day", 25)), time(int(hour), int(minute or 0)))
        if not 1 <= window.close_day <= 31:
            raise ValueError("close_day must be 1..31")
        return window

    def closes_at(self, year, month) -> datetime:
        day = min(self.close_day, calendar.monthrange(year, month)[1])
        return datetime.combine(datetime(year, month, day).date(), self.close_time, tzinfo=SHANGHAI)

    def is_open(self, now: datetime) -> bool:
        local = now.astimezone(SHANGHAI)
        return local < self.closes_at(local.year, local.month)

    def next_cutoff(self, now: datetime) -> datetime:
        """The end of the open window that contains ``now``, or of the next one when closed."""
        local = now.astimezone(SHANGHAI)
        cutoff = self.closes_at(local.year, local.month)
        if local < cutoff:
            return cutoff
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        return self.closes_at(year, month)


def window_for(windows: dict, region_code: str | None, insurance_type: str) -> Window:
    """Configured windows by the most specific key: "<region>/<type>", "<region prefix>/<type>", "<type>",
    "<region prefix>", "default". Region prefixes are tried longest first (231002, 2310, 23)."""
    windows = windows or {}
    region = region_code or ""
    prefixes = [region[:n] for n in (6, 4, 2) if len(region) >= n]
    keys = [f"{p}/{insurance_type}" for p in prefixes] + [insurance_type] + prefixes + ["default"]
    for key in keys:
        if key in windows:
            return Window.parse(windows[key])
    return Window()


def check_window(window: Window, now: datetime):
    if not window.is_open(now):
        local_cutoff = window.closes_at(now.astimezone(SHANGHAI).year, now.astimezone(SHANGHAI).month)
        raise RuleViolation("PAYMENT_WINDOW_CLOSED",
                            f"当前不在缴费征期内：每月{window.close_day}日{window.close_time:%H:%M}（不含）之前可缴费",
                            {"closed_since": local_cutoff.isoformat(),
                             "reopens_at": _month_start_after(now).isoformat()})


def _month_start_after(now):
    local = now.astimezone(SHANGHAI)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=SHANGHAI)


# ---- the order state machine -------------------------------------------------------------------
PENDING, PAYING, PAID, FAILED, EXPIRED, UNKNOWN = "pending", "paying", "paid", "failed", "expired", "unknown"
STATUSES = (PENDING, PAYING, PAID, FAILED, EXPIRED, UNKNOWN)
TRANSITIONS = {
    PENDING: {PAYING, EXPIRED},
    PAYING: {PAID, FAILED, UNKNOWN},
    UNKNOWN: {PAID, FAILED},  # settled later by notification, status query or reconciliation
    PAID: set(), FAILED: set(), EXPIRED: set(),
}
FINAL = {PAID, FAILED, EXPIRED}
# Plans stay locked in these: the money may be on its way.
HOLDS_PLANS = {PENDING, PAYING, UNKNOWN}


def sources_for(target):
    """The statuses an order may move to ``target`` from: the filter of the guarded update."""
    return sorted(status for status, targets in TRANSITIONS.items() if target in targets)


def can_move(current, target):
    return target in TRANSITIONS.get(current, set())


DEFAULT_ORDER_TTL = timedelta(minutes=30)


def expires_at(now: datetime, ttl: timedelta = DEFAULT_ORDER_TTL) -> datetime:
    return now + ttl


def paid_message(amount_text):
    return f"您已经付款{amount_text}元"


STATUS_MESSAGES = {
    PENDING: "缴费记录已生成，请选择缴费方式并完成支付",
    PAYING: "支付处理中，请稍候查询",
    UNKNOWN: "支付结果确认中，请勿重复缴费；如已扣款，结果将在核对后更新",
    FAILED: "支付未成功，请重新选择缴费计划缴费",
    EXPIRED: "缴费记录已超时失效，请重新选择缴费计划缴费",
}


def tax_ticket_no(issued_on: datetime, sequence: int) -> str:
    """电子税票号码: 3 + 23 (黑龙江) + yymmdd + 11-digit daily sequence = 20 digits."""
    local = issued_on.astimezone(SHANGHAI)
    if not 0 < sequence < 10 ** 11:
        raise ValueError("tax ticket sequence out of range")
    return f"323{local:%y%m%d}{sequence:011d}"
