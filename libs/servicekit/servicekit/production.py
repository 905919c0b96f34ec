"""``APP_ENV=production`` refuses to start with development settings, and says which setting is wrong.

Each rule names a setting and what makes it unsafe; services check the rules that concern them at container
setup (``ServiceRuntime``), so a mis-configured pod fails its start instead of serving with a dev key.
"""
from dataclasses import dataclass
from typing import Callable

from servicekit import config as cfg

DEV_MARKERS = ("dev-", "change-me", "dev_keys", "/sim/")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "0.0.0.0")


class UnsafeConfiguration(Exception):
    pass


@dataclass(frozen=True)
class Rule:
    setting: str
    unsafe: Callable[[object], bool]
    why: str
    required_by: tuple = ()  # services for which a missing setting is itself unsafe (they fall back to dev keys)


def _devish(value):
    return value in (None, "") or any(marker in str(value) for marker in DEV_MARKERS)


RULES = [
    Rule("TOKEN_SECRET", _devish, "session tokens would be signed with the public development key", ("identity",)),
    Rule("SMS_CODE_SECRET", _devish, "SMS code hashes would use the public development key", ("identity",)),
    Rule("OPS_TOKEN", lambda v: v not in (None, "") and _devish(v), "the ops endpoints would accept the dev token"),
    Rule("DEV_CLOCK_ENABLED", lambda v: str(v).strip().lower() in cfg.TRUE_WORDS,
         "anyone with database access could move the service clock"),
    Rule("SMS_GATEWAY_URL", lambda v: v not in (None, "") and _devish(v), "SMS would go to the simulator"),
    Rule("TAX_REGISTRY_URL", lambda v: v not in (None, "") and _devish(v), "enrolments would come from the simulator"),
    Rule("HR_BUREAU_URL", lambda v: v not in (None, "") and _devish(v), "plans would come from the simulator"),
    Rule("PUBLIC_BASE_URL", lambda v: v in (None, "") or any(h in str(v) for h in LOCAL_HOSTS),
         "certificate QR codes would point at a local address", ("certs",)),
    Rule("UNIONPAY_BASE_URL", lambda v: v not in (None, "") and _devish(v), "payments would go to the simulator"),
    Rule("UNIONPAY_PUBLIC_KEY_PATH", _devish,
         "notifications would be verified with the simulator's DEV-ONLY key (mount the channel's public key)",
         ("payment_gateway",)),
    Rule("PAYMENT_NOTIFY_BASE_URL", lambda v: v in (None, "") or any(h in str(v) for h in LOCAL_HOSTS),
         "the channel could not reach our notification URL", ("payment_gateway",)),
    Rule("MEDICAL_BUREAU_URL", lambda v: v not in (None, "") and _devish(v), "enrolments would come from the simulator"),
]


def problems(config, service_name, rules=RULES):
    return [f"{rule.setting}: {rule.why}" for rule in rules
            if (rule.setting in config or service_name in rule.required_by) and rule.unsafe(config.get(rule.setting))]


def check(config, service_name, rules=RULES):
    """Raise UnsafeConfiguration listing every unsafe setting when APP_ENV is production."""
    if str(cfg.setting(config, "APP_ENV", "development")).lower() != "production":
        return
    found = problems(config, service_name, rules)
    if found:
        raise UnsafeConfiguration("refusing to start with APP_ENV=production: " + "; ".join(found))
