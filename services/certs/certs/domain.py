"""Certificate rules, pure: amounts in Chinese capitals, query ranges, record selection, codes, masking.

No Nameko, no pymongo: every function takes what it needs (including the time) as arguments.
"""
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from servicekit.clock import SHANGHAI
from servicekit.money import fen_to_str
from servicekit.pii import mask_id_number, mask_name

INSURANCE_TYPES = {
    "FE_PENSION": "灵活就业养老保险",
    "FE_MEDICAL": "灵活就业医疗保险",
    "RR_PENSION": "城乡居民养老保险",
    "RR_MEDICAL": "城乡居民医疗保险",
}
KINDS = {"payment": "社会保险费缴费证明", "tax": "中华人民共和国税收完税证明"}
TAX_CATEGORY = "社会保险费"  # 税种 column of the 完税证明
NO_RECORDS_MESSAGE = "未查询到缴费记录"

MAX_PERIOD_SPAN_MONTHS = 36
MAX_PAID_SPAN_DAYS = 366
MAX_RECORDS_PER_CERTIFICATE = 120


class RuleViolation(ValueError):
    """A broken input rule; ``code`` is the API error code, ``details`` maps field → messages."""

    def __init__(self, code, message, details=None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


def _invalid(field, message):
    return RuleViolation("VALIDATION_ERROR", message, {field: [message]})


# ---- amounts in Chinese capitals (大写) ----------------------------------------------------------
_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_IN_SECTION = ("", "拾", "佰", "仟")
_SECTIONS = ("", "万", "亿", "万亿")


def _section_words(value: int) -> str:
    """0 < value < 10000: 零 stands for one or more zeros between non-zero digits, never at the end."""
    words, pending_zero = [], False
    for position in range(3, -1, -1):
        digit = value // 10 ** position % 10
        if digit == 0:
            pending_zero = bool(words)
            continue
        if pending_zero:
            words.append("零")
            pending_zero = False
        words.append(_DIGITS[digit] + _IN_SECTION[position])
    return "".join(words)


def amount_in_words(fen: int) -> str:
    """Chinese capitals as the PBOC rules for 票据和结算凭证 write them (《支付结算办法》附件一).

    105,000.53 → 壹拾万伍仟元零伍角叁分: 壹拾 keeps its 壹; one 零 for any run of zeros inside the number;
    整 after 元 only; 零 after 元 when 角 is zero and 分 is not; nothing when a whole 万/亿 section is zero
    except the 零 that bridges it.
    """
    if not isinstance(fen, int) or isinstance(fen, bool) or fen < 0:
        raise ValueError(f"not an amount in fen: {fen!r}")
    yuan, jiao, fen_digit = fen // 100, fen // 10 % 10, fen % 10
    if yuan >= 10 ** 16:
        raise ValueError("amount too large")
    parts, need_zero = [], False
    sections = []
    rest = yuan
    while rest:
        sections.append(rest % 10000)
        rest //= 10000
    for index in range(len(sections) - 1, -1, -1):
        value = sections[index]
        if value == 0:
            need_zero = bool(parts)
            continue
        if parts and (need_zero or value < 1000):
            parts.append("零")
        parts.append(_section_words(value) + _SECTIONS[index])
        need_zero = False
    words = "".join(parts)
    if yuan:
        words += "元"
    if jiao == 0 and fen_digit == 0:
        return (words or "零元") + "整"
    if jiao:
        words += _DIGITS[jiao] + "角"
    elif yuan:
        words += "零"
    if fen_digit:
        words += _DIGITS[fen_digit] + "分"
    return words


# ---- ranges --------------------------------------------------------------------------------------
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_period(text, field) -> str:
    if not isinstance(text, str) or not _PERIOD.match(text):
        raise _invalid(field, "费款所属期格式应为YYYY-MM")
    return text


def _month_index(period: str) -> int:
    return int(period[:4]) * 12 + int(period[5:7]) - 1


def check_period_range(period_from, period_to):
    """Inclusive 费款所属期 range, at most MAX_PERIOD_SPAN_MONTHS months."""
    start, end = parse_period(period_from, "period_from"), parse_period(period_to, "period_to")
    if start > end:
        raise _invalid("period_to", "截止所属期不能早于起始所属期")
    if _month_index(end) - _month_index(start) + 1 > MAX_PERIOD_SPAN_MONTHS:
        raise _invalid("period_to", f"查询区间不能超过{MAX_PERIOD_SPAN_MONTHS}个月")
    return start, end


def parse_day(text, field) -> date:
    try:
        if not isinstance(text, str) or len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise _invalid(field, "日期格式应为YYYY-MM-DD") from None


def paid_window(paid_from, paid_to):
    """Inclusive Asia/Shanghai dates → [start, end) aware datetimes, at most MAX_PAID_SPAN_DAYS days."""
    start, end = parse_day(paid_from, "paid_from"), parse_day(paid_to, "paid_to")
    if start > end:
        raise _invalid("paid_to", "截止日期不能早于起始日期")
    if (end - start).days + 1 > MAX_PAID_SPAN_DAYS:
        raise _invalid("paid_to", f"查询区间不能超过{MAX_PAID_SPAN_DAYS}天")
    return (datetime.combine(start, time.min, SHANGHAI),
            datetime.combine(end + timedelta(days=1), time.min, SHANGHAI))


# ---- records -------------------------------------------------------------------------------------
def record_id(order_id: str, plan_id: str) -> str:
    """Stable per paid plan of an order: a redelivered event maps onto the same record."""
    return "R" + hashlib.sha256(f"{order_id}|{plan_id}".encode()).hexdigest()[:23].upper()


def sort_key(record) -> tuple:
    return record["period"], record["paid_at"], record["_id"]


def select_records(available: list, record_ids) -> list:
    """The records a certificate covers: all of ``available`` (default), or exactly the requested ones.

    ``available`` is what the payer may certify (own payer, own insurance type, paid in the range). An id
    outside it, whether unknown, another payer's or outside the range, refuses the whole request: nothing
    is issued for a partial selection. Nothing to certify is NO_RECORDS.
    """
    if record_ids is None:
        chosen = list(available)
    else:
        by_id = {r["_id"]: r for r in available}
        wanted = list(dict.fromkeys(record_ids))  # keep the order, drop repeats
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise RuleViolation("NOT_FOUND", "所选缴费记录不存在或不属于当前缴费人",
                                {"record_ids": [f"未找到: {', '.join(missing[:20])}"]})
        chosen = [by_id[i] for i in wanted]
    if not chosen:
        raise RuleViolation("NO_RECORDS", NO_RECORDS_MESSAGE)
    if len(chosen) > MAX_RECORDS_PER_CERTIFICATE:
        raise _invalid("record_ids", f"一份证明最多包含{MAX_RECORDS_PER_CERTIFICATE}条缴费记录")
    return sorted(chosen, key=sort_key)


# ---- certificate codes ----------------------------------------------------------------------------
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # base32 without 0/O, 1/I: read aloud and typed by clerks
CODE_GROUPS, GROUP_LENGTH = 5, 4


def new_verification_code() -> str:
    """20 symbols of a 32-letter alphabet (100 bits), shown as 5 groups of 4: XXXX-XXXX-XXXX-XXXX-XXXX."""
    symbols = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(CODE_GROUPS * GROUP_LENGTH))
    return "-".join(symbols[i:i + GROUP_LENGTH] for i in range(0, len(symbols), GROUP_LENGTH))


def normalise_code(text) -> str | None:
    """Accept lower case and missing or extra separators; None when it cannot be a code."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    symbols = re.sub(r"[\s\-]", "", text).upper()
    if len(symbols) != CODE_GROUPS * GROUP_LENGTH or any(c not in _CODE_ALPHABET for c in symbols):
        return None
    return "-".join(symbols[i:i + GROUP_LENGTH] for i in range(0, len(symbols), GROUP_LENGTH))


def new_certificate_no(issued_at: datetime) -> str:
    """The number printed as No.: issue date and 8 random digits (unique index in the repository)."""
    return issued_at.astimezone(SHANGHAI).strftime("%Y%m%d") + f"{secrets.randbelow(10 ** 8):08d}"


# ---- what goes on the paper -------------------------------------------------------------------------
@dataclass(frozen=True)
class IssuerSettings:
    public_base_url: str
    default_authority: str = "国家税务总局黑龙江省税务局"
    authorities: tuple = ()  # (region code prefix, authority name), longest prefix wins
    tax_shows_full_id: bool = True

    def authority_for(self, region_code) -> str:
        matches = [(len(prefix), name) for prefix, name in self.authorities
                   if region_code and region_code.startswith(prefix)]
        return max(matches)[1] if matches else self.default_authority


def parse_authorities(text) -> tuple:
    """'2310=国家税务总局牡丹江市税务局;2301=国家税务总局哈尔滨市税务局' → ((prefix, name), ...)."""
    pairs = []
    for item in filter(None, (part.strip() for part in (text or "").split(";"))):
        prefix, _, name = item.partition("=")
        if prefix.strip().isdigit() and name.strip():
            pairs.append((prefix.strip(), name.strip()))
    return tuple(pairs)


def verification_url(settings: IssuerSettings, code: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/api/v1/certificates/{code}"


def certificate_document(kind, records, payer, code, certificate_no, issued_at, settings: IssuerSettings) -> dict:
    """Plain data for the renderer (crosses a process boundary): strings and lists only."""
    if kind not in KINDS:
        raise _invalid("kind", "证明种类应为payment或tax")
    total = sum(r["amount_fen"] for r in records)
    insurance_type = records[0]["insurance_type"]
    local_issue = issued_at.astimezone(SHANGHAI)
    show_full = kind == "tax" and settings.tax_shows_full_id
    return {
        "kind": kind,
        "title": KINDS[kind],
        "certificate_no": certificate_no,
        "issue_date": f"{local_issue.year}年{local_issue.month:02d}月{local_issue.day:02d}日",
        "authority": settings.authority_for(records[0].get("region_code")),
        "payer_name": payer["name"],
        "id_label": "纳税人识别号" if kind == "tax" else "身份证号码",
        "id_number": payer["id_number"] if show_full else mask_id_number(payer["id_number"]),
        "insurance_type": insurance_type,
        "insurance_name": INSURANCE_TYPES.get(insurance_type, insurance_type),
        "tax_category": TAX_CATEGORY,
        "rows": [{
            "ticket_no": r["tax_ticket_no"],
            "order_id": r["order_id"],
            "period": period_label(r["period"]),
            "paid_date": r["paid_at"].astimezone(SHANGHAI).strftime("%Y-%m-%d"),
            "amount": fen_to_str(r["amount_fen"]),
        } for r in records],
        "total": fen_to_str(total),
        "total_words": amount_in_words(total),
        "code": code,
        "verify_url": verification_url(settings, code),
    }


def period_label(period: str) -> str:
    """2024-03 → 2024-03-01至2024-03-31, as 税款所属时期 prints a period."""
    year, month = int(period[:4]), int(period[5:7])
    first = date(year, month, 1)
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1))
    return f"{first.isoformat()}至{last.isoformat()}"


def verification_view(certificate) -> dict:
    """What the public verification answers: enough to compare with the paper, never the full ID."""
    return {
        "valid": True,
        "code": certificate["_id"],
        "certificate_no": certificate["certificate_no"],
        "kind": certificate["kind"],
        "kind_name": KINDS[certificate["kind"]],
        "issued_at": certificate["issued_at"].astimezone(SHANGHAI).isoformat(),
        "payer_name_masked": mask_name(certificate["payer_name"]),
        "insurance_type": certificate["insurance_type"],
        "total": fen_to_str(certificate["total_fen"]),
        "record_count": len(certificate["records"]),
        "periods": sorted({r["period"] for r in certificate["records"]}),
    }


def record_view(record) -> dict:
    """One 缴费记录 as the payer sees it."""
    return {
        "record_id": record["_id"],
        "period": record["period"],
        "amount": fen_to_str(record["amount_fen"]),
        "paid_at": record["paid_at"].astimezone(SHANGHAI).isoformat(),
        "tax_ticket_no": record["tax_ticket_no"],
        "insurance_type": record["insurance_type"],
        "insurance_name": INSURANCE_TYPES.get(record["insurance_type"], record["insurance_type"]),
        "plan_id": record["plan_id"],
        "order_id": record["order_id"],
        "payment_id": record["payment_id"],
        "channel": record["channel"],
    }


def records_answer(records) -> dict:
    views = [record_view(r) for r in sorted(records, key=sort_key)]
    answer = {"records": views, "count": len(views),
              "total": fen_to_str(sum(r["amount_fen"] for r in records))}
    if not views:
        answer["message"] = NO_RECORDS_MESSAGE
    return answer
