"""Identity rules, pure: ID numbers, phones, passwords, SMS codes, lock-out, session tokens.

No Nameko, no pymongo here: every function takes the time it needs as an argument.
"""
import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from servicekit.clock import SHANGHAI

INSURANCE_TYPES = {
    "FE_PENSION": "灵活就业养老保险",
    "FE_MEDICAL": "灵活就业医疗保险",
    "RR_PENSION": "城乡居民养老保险",
    "RR_MEDICAL": "城乡居民医疗保险",
}
# Where each type's 参保登记 is verified (seed, 常见问题 (4)(二)).
TAX_REGISTRY, MEDICAL_BUREAU = "tax_registry", "medical_bureau"
VERIFIED_AT = {"FE_PENSION": TAX_REGISTRY, "FE_MEDICAL": TAX_REGISTRY, "RR_PENSION": TAX_REGISTRY,
               "RR_MEDICAL": MEDICAL_BUREAU}
NOT_ENROLLED_ADVICE = {
    TAX_REGISTRY: "请核实录入身份证号或姓名是否准确；如准确，请联系主管税务机关或携带身份证到社保经办机构大厅综合窗口咨询",
    MEDICAL_BUREAU: "请核实录入身份证号或姓名是否准确；如准确，请联系主管医保经办机构",
}
REGISTER_NOT_ENROLLED_ADVICE = "请核实录入身份证号或姓名是否准确；如准确，表示在社保部门未查到登记信息，请携带身份证到社保经办机构大厅综合窗口咨询"

SMS_PURPOSES = ("register", "login", "change_phone")


class RuleViolation(ValueError):
    """A broken input rule; ``code`` is the API error code, ``field`` the input it concerns."""

    def __init__(self, code, message, field=None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


# ---- ID number (GB 11643-1999) -------------------------------------------------------------
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"


def id_check_char(first17: str) -> str:
    return _ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS)) % 11]


def normalise_id_number(raw: str) -> str:
    """Return the canonical 18-character ID (upper-case X) or raise RuleViolation(INVALID_ID_NUMBER).

    The region code is not checked against today's list: old codes stay valid on old cards.
    """
    text = (raw or "").strip().upper()

    def bad(reason):
        return RuleViolation("INVALID_ID_NUMBER", f"身份证号码不正确：{reason}", "id_number")

    if len(text) != 18:
        raise bad("应为18位")
    if not (text[:17].isdigit() and text[:17].isascii() and (text[17].isdigit() or text[17] == "X")):
        raise bad("前17位应为数字，最后一位为数字或大写X")
    try:
        birth = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise bad("出生日期无效") from None
    if birth.year < 1900:
        raise bad("出生日期无效")
    if id_check_char(text[:17]) != text[17]:
        raise bad("校验码不正确")
    return text


def birth_date(id_number: str) -> date:
    return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


# ---- names, phones, passwords -------------------------------------------------------------
_PHONE = re.compile(r"^1[3-9]\d{9}$")
_NAME = re.compile(r"^[\u3400-\u9fff\U00020000-\U0003134f·•A-Za-z ]{1,30}$")


def check_phone(phone: str, field="phone") -> str:
    if not isinstance(phone, str) or not _PHONE.match(phone):
        raise RuleViolation("VALIDATION_ERROR", "请输入11位中国大陆手机号码", field)
    return phone


def normalise_name(name: str) -> str:
    text = (name or "").strip()
    if not _NAME.match(text):
        raise RuleViolation("VALIDATION_ERROR", "请输入与身份证一致的姓名", "name")
    return text


PASSWORD_MIN, PASSWORD_MAX = 8, 64


def check_password_policy(password: str) -> None:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise RuleViolation("VALIDATION_ERROR", f"密码长度应为{PASSWORD_MIN}到{PASSWORD_MAX}位", "password")
    if not (re.search(r"[A-Za-z]", password) and re.search(r"\d", password)):
        raise RuleViolation("VALIDATION_ERROR", "密码须同时包含字母和数字", "password")


# ---- SMS codes -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SmsPolicy:
    ttl: timedelta = timedelta(minutes=5)
    max_attempts: int = 5
    resend_interval: timedelta = timedelta(seconds=60)
    daily_limit: int = 10


def new_sms_code() -> str:
    return f"{secrets.randbelow(10 ** 6):06d}"


def hash_sms_code(pepper: bytes, phone: str, purpose: str, code: str) -> str:
    """Keyed hash: a leaked table of 6-digit codes cannot be brute-forced without the pepper."""
    return hmac.new(pepper, f"{phone}|{purpose}|{code}".encode(), hashlib.sha256).hexdigest()


def sms_day(now: datetime) -> str:
    """The daily send limit counts per calendar day in Asia/Shanghai."""
    return now.astimezone(SHANGHAI).strftime("%Y-%m-%d")


def code_is_usable(code_doc: dict, now: datetime, policy: SmsPolicy) -> bool:
    return (not code_doc["used"] and code_doc["attempts"] < policy.max_attempts and now < code_doc["expires_at"])


# ---- lock-out ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    lock_for: timedelta = timedelta(minutes=15)


def locked_until(payer: dict, now: datetime):
    """The time the lock ends, or None when the payer may try to log in."""
    until = payer.get("locked_until")
    return until if until and until > now else None


# ---- session tokens ------------------------------------------------------------------------
TOKEN_TTL = timedelta(minutes=30)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issue_token(secret: bytes, session_id: str, expires_at: datetime) -> str:
    """v1.<session id>.<expiry epoch>.<HMAC-SHA256>: forged or altered tokens fail before any lookup."""
    body = f"v1.{session_id}.{int(expires_at.timestamp())}"
    return f"{body}.{_b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())}"


def parse_token(secret: bytes, token: str, now: datetime):
    """Return the session id of a well-signed, unexpired token, else None."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != "v1":
        return None
    body = ".".join(parts[:3])
    expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, parts[3]):
        return None
    try:
        expires = int(parts[2])
    except ValueError:
        return None
    if now.timestamp() >= expires:
        return None
    return parts[1]


def new_session_id() -> str:
    return secrets.token_urlsafe(24)
