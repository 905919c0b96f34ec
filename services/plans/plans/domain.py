"""Plan rules, pure: what a bureau change does to a plan, deadlines, 牡丹江 grades and declarations.

No Nameko, no pymongo: every function takes the time and the configuration it needs as arguments.
"""
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone

from servicekit.clock import SHANGHAI

INSURANCE_TYPES = {
    "FE_PENSION": "灵活就业养老保险",
    "FE_MEDICAL": "灵活就业医疗保险",
    "RR_PENSION": "城乡居民养老保险",
    "RR_MEDICAL": "城乡居民医疗保险",
}
HR, MEDICAL = "hr", "medical"
BUREAU_OF = {"FE_PENSION": HR, "FE_MEDICAL": HR, "RR_PENSION": HR, "RR_MEDICAL": MEDICAL}

UNPAID, LOCKED, PAID, WITHDRAWN = "unpaid", "locked", "paid", "withdrawn"
OPEN = (UNPAID, LOCKED)  # what a payer still owes

NO_PLAN_MESSAGE = "当前没有可缴费计划"
# Seed, 常见问题 (5)(一): where to ask when the bureau has sent no plan.
NO_PLAN_ADVICE = {
    HR: "请向主管税务机关查证税务部门是否已经收到经办机构传递的缴费计划信息",
    MEDICAL: "请根据医保部门反馈的提示咨询主管医保经办机构",
}
DECLARE_FIRST_ADVICE = "牡丹江地区灵活就业养老保险请先进行缴费申报，经人社部门核定后即可缴费"


class RuleViolation(ValueError):
    def __init__(self, code, message, field=None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


# ---- periods -------------------------------------------------------------------------------------
def parse_period(text) -> tuple[int, int]:
    if not isinstance(text, str) or len(text) != 7 or text[4] != "-":
        raise ValueError(f"bad period {text!r}")
    year, month = int(text[:4]), int(text[5:])
    if not (1990 <= year <= 2200 and 1 <= month <= 12):
        raise ValueError(f"bad period {text!r}")
    return year, month


def format_period(year, month) -> str:
    return f"{year:04d}-{month:02d}"


def next_period(period) -> str:
    year, month = parse_period(period)
    return format_period(year + month // 12, month % 12 + 1)


def period_range(first, last) -> list[str]:
    periods, current = [], first
    while current <= last:
        periods.append(current)
        current = next_period(current)
    return periods


# ---- deadlines -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CutOff:
    """Collection closes at ``hour``:00 on ``day`` of each month, Asia/Shanghai (seed: 25th, 17:00 exclusive)."""
    day: int = 25
    hour: int = 17

    def next_after(self, now: datetime) -> datetime:
        local = now.astimezone(SHANGHAI)
        this_month = datetime.combine(date(local.year, local.month, self.day), time(self.hour), SHANGHAI)
        if local < this_month:
            return this_month
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        return datetime.combine(date(year, month, self.day), time(self.hour), SHANGHAI)


def effective_deadline(plan, now, cutoff: CutOff) -> datetime:
    """The bureau's deadline when it sent one, else the next collection cut-off."""
    deadline = plan.get("deadline")
    return deadline.astimezone(SHANGHAI) if deadline else cutoff.next_after(now)


# ---- applying a bureau's plan change -------------------------------------------------------------
def content_digest(data: dict) -> str:
    """Fingerprint of what the bureau says about a plan: a re-sent identical plan changes nothing."""
    keys = ("id_number", "insurance_type", "period", "amount_fen", "deadline", "declaration_id", "withdrawn")
    # datetimes in UTC: the bureau's '+08:00' and the database's UTC must fingerprint alike
    body = {k: (data.get(k).astimezone(timezone.utc).isoformat() if isinstance(data.get(k), datetime)
                else data.get(k)) for k in keys}
    return hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Decision:
    """What to do with one plan change. ``set`` is applied to the stored plan (None: nothing changes)."""
    action: str  # insert | noop | revise | revise_refused | revise_pending | withdraw | withdraw_pending | ignore
    set: dict | None = None
    events: list = field(default_factory=list)  # (event_type, payload)
    plan_id: str | None = None


def _event_base(plan):
    return {"plan_id": plan["_id"], "bureau": plan["bureau"], "id_number": plan["id_number"],
            "insurance_type": plan["insurance_type"], "period": plan["period"]}


def decide(existing: dict | None, change: dict, bureau: str, now: datetime) -> Decision:
    """Apply one bureau change (``change``: plan_id, id_number, insurance_type, period, amount_fen, deadline,
    declaration_id, withdrawn) to the stored plan ``existing``.

    - new plan: inserted unpaid (a withdrawal of an unknown plan is ignored);
    - identical to what the bureau sent last: nothing;
    - revision (same plan id, new content): applied to an unpaid plan; recorded but refused for a paid one;
      kept pending for a locked one (applied when its order releases it, refused when it is paid);
    - withdrawal: hides an unpaid plan; a locked plan stays with its order and is hidden if released;
      a paid plan stays paid.
    """
    digest = content_digest(change)
    bureau_view = {k: change.get(k) for k in ("period", "amount_fen", "deadline", "withdrawn")}
    bureau_view["digest"] = digest
    if existing is None:
        if change.get("withdrawn"):
            return Decision("ignore")
        plan = {"_id": change["plan_id"], "bureau": bureau, "id_number": change["id_number"],
                "insurance_type": change["insurance_type"], "period": change["period"],
                "amount_fen": change["amount_fen"], "deadline": change.get("deadline"),
                "declaration_id": change.get("declaration_id"), "status": UNPAID, "order_id": None,
                "bureau_view": bureau_view, "rev": 1, "created_at": now, "updated_at": now}
        return Decision("insert", plan, [("plan.synced", {**_event_base(plan), "amount_fen": plan["amount_fen"],
                                                          "status": UNPAID})])
    if existing["bureau_view"]["digest"] == digest:
        return Decision("noop")
    if existing["bureau"] != bureau or existing["id_number"] != change["id_number"] \
            or existing["insurance_type"] != change["insurance_type"]:
        # A plan id may not move to another payer or bureau: that is a bureau error, not a revision.
        return Decision("ignore")
    status = existing["status"]
    base = {"bureau_view": bureau_view, "updated_at": now}
    if change.get("withdrawn"):
        payload = {**_event_base(existing), "status": status}
        if status == UNPAID:
            return Decision("withdraw", {**base, "status": WITHDRAWN, "withdrawn_at": now},
                            [("plan.withdrawn", {**payload, "applied": True, "status": WITHDRAWN,
                                                 "reason": None})])
        if status == WITHDRAWN:
            return Decision("noop", base)
        return Decision("withdraw_pending", base,
                        [("plan.withdrawn", {**payload, "applied": False, "reason": status})])
    revision = {"old_amount_fen": existing["amount_fen"], "new_amount_fen": change["amount_fen"],
                "old_period": existing["period"], "new_period": change["period"]}
    if status in (UNPAID, WITHDRAWN):
        # A withdrawn plan that the bureau sends again is back (the bureau re-issued it).
        updated = {**base, "status": UNPAID, "amount_fen": change["amount_fen"], "period": change["period"],
                   "deadline": change.get("deadline"), "declaration_id": change.get("declaration_id")}
        return Decision("revise", updated,
                        [("plan.revised", {**_event_base(existing), **revision, "applied": True, "reason": None,
                                           "status": UNPAID})])
    if status == PAID:
        refused = {**revision, "at": now}
        return Decision("revise_refused", {**base, "refused_revision": refused},
                        [("plan.revised", {**_event_base(existing), **revision, "applied": False,
                                           "reason": "paid", "status": PAID})])
    return Decision("revise_pending", base,
                    [("plan.revised", {**_event_base(existing), **revision, "applied": False,
                                       "reason": "locked", "status": LOCKED})])


def on_release(plan: dict, now: datetime) -> dict:
    """A locked plan whose order ended unpaid: back to unpaid with the bureau's latest view, or withdrawn."""
    view = plan["bureau_view"]
    if view.get("withdrawn"):
        return {"status": WITHDRAWN, "order_id": None, "withdrawn_at": now, "updated_at": now}
    return {"status": UNPAID, "order_id": None, "amount_fen": view["amount_fen"], "period": view["period"],
            "deadline": view.get("deadline"), "updated_at": now}


# ---- 牡丹江 declarations (缴费申报) -----------------------------------------------------------------
DEFAULT_RATIOS_PCT = (60, 70, 80, 90, 100, 150, 200, 250, 300)


@dataclass(frozen=True)
class DeclarationPolicy:
    """Yearly configuration: prior-year average monthly wage (fen) per contribution year, ratios, rate."""
    avg_wage_fen: dict  # year -> fen
    ratios_pct: tuple = DEFAULT_RATIOS_PCT
    rate_pct: int = 20
    region_prefixes: tuple = ("2310",)

    def applies_to(self, enrollment) -> bool:
        return (enrollment is not None and enrollment.get("insurance_type") == "FE_PENSION"
                and any(str(enrollment.get("region_code", "")).startswith(p) for p in self.region_prefixes))

    def grades(self, year):
        wage = self.avg_wage_fen.get(year)
        if wage is None:
            raise RuleViolation("CONFLICT", f"{year}年度缴费基数尚未公布，暂不能申报")
        return [{"grade": index + 1, "base_ratio_pct": ratio, "base_fen": round_half_up(wage * ratio, 100),
                 "monthly_amount_fen": monthly_amount_fen(wage, ratio, self.rate_pct)}
                for index, ratio in enumerate(self.ratios_pct)]


def round_half_up(numerator: int, denominator: int) -> int:
    """Exact integer division rounded half up (money never touches floats)."""
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (1 if remainder * 2 >= denominator else 0)


def monthly_amount_fen(avg_wage_fen: int, ratio_pct: int, rate_pct: int) -> int:
    """round(avg_wage × ratio × rate, 2) in 元 == the same product in fen rounded half up to a whole fen."""
    return round_half_up(avg_wage_fen * ratio_pct * rate_pct, 100 * 100)


def declarable_periods(first: str, last: str, declared: set) -> list[str]:
    """Periods from ``first`` to ``last`` not covered by a live declaration, oldest first."""
    return [p for p in period_range(first, last) if p not in declared]


def check_declaration(periods: list, declarable: list) -> list[str]:
    """The sequential rule: the chosen periods must be the first k declarable ones, oldest first, no gaps."""
    if not periods:
        raise RuleViolation("VALIDATION_ERROR", "请选择申报的费款所属期", "periods")
    for p in periods:
        try:
            parse_period(p)
        except ValueError:
            raise RuleViolation("VALIDATION_ERROR", "费款所属期格式应为YYYY-MM", "periods") from None
    chosen = sorted(set(periods))
    if len(chosen) != len(periods):
        raise RuleViolation("VALIDATION_ERROR", "费款所属期不能重复", "periods")
    if any(p not in declarable for p in chosen):
        raise RuleViolation("CONFLICT", "所选费款所属期已申报或不在可申报范围内")
    if chosen != declarable[:len(chosen)]:
        raise RuleViolation("PLAN_SEQUENCE_VIOLATION", "请按费款所属期从前往后连续申报，不允许跨越属期申报")
    return chosen


def declaration_window(enrolled_on, now: datetime) -> tuple[str, str]:
    """From the enrolment month (not before January of this year) to December of this year, Asia/Shanghai."""
    local = now.astimezone(SHANGHAI)
    first = format_period(local.year, 1)
    if enrolled_on:
        try:
            enrolled = format_period(*parse_period(str(enrolled_on)[:7]))
            first = max(first, enrolled)
        except ValueError:
            pass
    return first, format_period(local.year, 12)


def parse_avg_wages(text) -> dict:
    """'2025=7312.00,2026=7600.00' (yuan) -> {2025: 731200, 2026: 760000}."""
    from servicekit.money import str_to_fen

    wages = {}
    for item in filter(None, (text or "").replace(";", ",").split(",")):
        year, _, amount = item.strip().partition("=")
        wages[int(year)] = str_to_fen(amount.strip())
    return wages
