"""Typed application errors that cross RPC boundaries intact.

A service raises ``AppError(code, message, details)``; Nameko serialises its args, and because the class is
registered with ``deserialize_to_instance`` the caller gets an ``AppError`` back, not a bare ``RemoteError``.
The gateway maps ``code`` to an HTTP status with ``ERROR_CATALOG`` (the table in API.md).
"""
import json

from nameko.exceptions import deserialize_to_instance

# code -> (HTTP status, default Chinese message a payer should see)
ERROR_CATALOG = {
    "VALIDATION_ERROR": (400, "请求参数有误"),
    "INVALID_ID_NUMBER": (400, "身份证号码不正确，请输入18位身份证号码，字母要大写"),
    "SMS_CODE_INVALID": (400, "验证码错误、已过期或已使用"),
    "SMS_RATE_LIMITED": (429, "获取验证码过于频繁，请稍后再试"),
    "UNAUTHENTICATED": (401, "身份证号码、姓名或密码错误，或登录已失效"),
    "ACCOUNT_LOCKED": (423, "密码错误次数过多，账户已锁定，请稍后再试"),
    "NOT_ENROLLED": (403, "个体参保人员信息不存在"),
    "ALREADY_REGISTERED": (409, "该身份证号码已注册"),
    "NO_PAYABLE_PLAN": (409, "当前没有可缴费计划"),
    "PLAN_SEQUENCE_VIOLATION": (409, "请按费款所属期从上至下连续选择缴费计划，不允许跨越属期缴费"),
    "PLAN_LOCKED": (409, "缴费计划正在另一笔缴费中"),
    "PAYMENT_WINDOW_CLOSED": (409, "当前不在缴费征期内"),
    "NOT_FOUND": (404, "未找到"),
    "CONFLICT": (409, "当前状态不允许此操作"),
    "NO_RECORDS": (404, "未查询到缴费记录"),
    "SIGNATURE_INVALID": (400, "签名验证失败"),
    "RATE_LIMITED": (429, "请求过于频繁，请稍后再试"),
    "SERVICE_UNAVAILABLE": (503, "服务暂时不可用，请稍后再试"),
    "INTERNAL_ERROR": (500, "系统繁忙，请稍后再试"),
}


@deserialize_to_instance
class AppError(Exception):
    """An expected, client-facing failure with a code from ``ERROR_CATALOG``."""

    def __init__(self, code, message=None, details=None):
        if code not in ERROR_CATALOG:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message or ERROR_CATALOG[code][1]
        # Nameko stringifies every non-string leaf of exception args (ints become "900"), so details travel
        # as one JSON string and are parsed back on the caller's side.
        self.details = json.loads(details) if isinstance(details, str) else (details or {})
        super().__init__(code, self.message, json.dumps(self.details, ensure_ascii=False))

    @property
    def http_status(self):
        return ERROR_CATALOG[self.code][0]

    def __str__(self):
        return f"{self.code}: {self.message}"
