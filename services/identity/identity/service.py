"""identity: payers, phones, passwords, SMS codes and sessions. Thin RPC methods over the domain rules."""
import logging
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventlet import tpool
from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.rpc import RpcProxy
from servicekit.entrypoints import rpc
from nameko.timer import timer

from servicekit import config as cfg
from servicekit import metrics
from servicekit.clock import Clock
from servicekit.context import RequestContext
from servicekit.errors import AppError
from servicekit.events import Outbox, relay_outbox
from servicekit.mongo import MongoDatabase
from servicekit.pii import mask_id_number, mask_phone, pseudonym
from servicekit.runtime import ServiceRuntime

from identity import domain
from identity.adapters import AdapterUnavailable, EnrollmentRegistries, PlansEnrollmentRegistry, SmsGateway
from identity.repository import (DuplicatePayer, PayerRepository, SessionRepository, SmsCodeRepository,
                                 ensure_indexes)

log = logging.getLogger(__name__)
_hasher = PasswordHasher()  # argon2id, memory-hard (64 MiB, 3 passes)
# Verified against when the ID is unknown, so a wrong ID takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
# Dev defaults only: every real deployment sets TOKEN_SECRET and SMS_CODE_SECRET.
DEV_TOKEN_SECRET = "dev-token-secret-change-me"
DEV_SMS_CODE_SECRET = "dev-sms-code-secret-change-me"


def _rule_error(violation: domain.RuleViolation):
    details = {violation.field: [violation.message]} if violation.field else {}
    return AppError(violation.code, violation.message, details)


def _password_matches(password_hash, password):
    try:
        return tpool.execute(_hasher.verify, password_hash, password)  # off the eventlet hub
    except (VerificationError, InvalidHashError):
        return False


class IdentityService:
    name = "identity"

    config = Config()
    runtime = ServiceRuntime()
    db = MongoDatabase("identity", ensure_indexes)
    clock = Clock()
    request_id = RequestContext()
    sms_gateway = SmsGateway()
    registries = EnrollmentRegistries()
    plans_rpc = RpcProxy("plans")  # the tax registry: HR enrolments as synced by plans
    dispatch = EventDispatcher()

    # ---- helpers -------------------------------------------------------------------------
    @property
    def _sms_policy(self):
        return domain.SmsPolicy()

    @property
    def _secret(self):
        return cfg.setting(self.config, "TOKEN_SECRET", DEV_TOKEN_SECRET).encode()

    @property
    def _pepper(self):
        return cfg.setting(self.config, "SMS_CODE_SECRET", DEV_SMS_CODE_SECRET).encode()

    def _codes(self):
        return SmsCodeRepository(self.db, self._sms_policy)

    def _check_code(self, phone, purpose, code, now, field="sms_code"):
        """Return the id of the matching usable code without consuming it, else raise SMS_CODE_INVALID naming
        the field it came in (a phone change carries two codes)."""
        codes = self._codes()
        doc = codes.latest(phone, purpose)
        invalid = AppError("SMS_CODE_INVALID", details={field: ["验证码错误、已过期或已使用"]})
        if not isinstance(code, str) or doc is None or not domain.code_is_usable(doc, now, self._sms_policy):
            raise invalid
        if not secrets.compare_digest(doc["code_hash"], domain.hash_sms_code(self._pepper, phone, purpose, code)):
            codes.count_wrong_attempt(doc["_id"])
            raise invalid
        return doc["_id"]

    def _consume_codes(self, code_ids, now):
        codes = self._codes()
        if not all(codes.consume(code_id, now) for code_id in code_ids):
            raise AppError("SMS_CODE_INVALID")  # lost a race with another use of the same code

    def _enrollments(self, id_number, bureau):
        try:
            registry = PlansEnrollmentRegistry(self.plans_rpc) if bureau == domain.TAX_REGISTRY \
                else self.registries[bureau]
            return registry.enrollments(id_number)
        except AdapterUnavailable as exc:
            log.warning("enrolment check failed: %s", exc)
            raise AppError("SERVICE_UNAVAILABLE", "参保登记信息暂时无法核验，请稍后再试") from None

    @staticmethod
    def _enrolled(enrollments, name, insurance_type=None):
        return any(e.get("name") == name and e.get("status", "active") != "terminated"
                   and (insurance_type is None or e.get("insurance_type") == insurance_type)
                   for e in enrollments)

    def _publish_outbox(self):
        relay_outbox(Outbox(self.db), self.dispatch, self.clock.now())

    # ---- RPC -------------------------------------------------------------------------------
    @rpc()
    def ping(self):
        return {"service": self.name, "ok": True}

    @rpc()
    def send_sms_code(self, phone, purpose):
        try:
            domain.check_phone(phone)
        except domain.RuleViolation as violation:
            raise _rule_error(violation) from None
        if purpose not in domain.SMS_PURPOSES:
            raise AppError("VALIDATION_ERROR", details={"purpose": ["不支持的用途"]})
        now, codes = self.clock.now(), self._codes()
        reservation = codes.reserve_send(phone, purpose, domain.sms_day(now), now)
        if reservation is None:
            raise AppError("SMS_RATE_LIMITED")
        code = domain.new_sms_code()
        try:
            self.sms_gateway.send(phone, f"【黑龙江税务】您的验证码为{code}，{int(self._sms_policy.ttl.total_seconds() // 60)}"
                                         f"分钟内有效，请勿泄露。")
        except AdapterUnavailable as exc:
            codes.release_send(reservation, now)
            log.warning("%s", exc)
            raise AppError("SERVICE_UNAVAILABLE", "短信发送失败，请稍后再试") from None
        codes.store(phone, purpose, domain.hash_sms_code(self._pepper, phone, purpose, code), now)
        return {"expires_in": int(self._sms_policy.ttl.total_seconds())}

    @rpc()
    def register(self, id_number, name, phone, password, sms_code):
        try:
            id_number = domain.normalise_id_number(id_number)
            name = domain.normalise_name(name)
            domain.check_phone(phone)
            domain.check_password_policy(password)
        except domain.RuleViolation as violation:
            raise _rule_error(violation) from None
        now = self.clock.now()
        code_id = self._check_code(phone, "register", sms_code, now)
        payers = PayerRepository(self.db)
        if payers.by_id_number(id_number):
            raise AppError("ALREADY_REGISTERED")
        # 4 个险种只要有一个参保登记就可以注册: the tax registry knows three, the medical bureau the fourth.
        if not any(self._enrolled(self._enrollments(id_number, bureau), name)
                   for bureau in (domain.TAX_REGISTRY, domain.MEDICAL_BUREAU)):
            raise AppError("NOT_ENROLLED", f"个体参保人员信息不存在。{domain.REGISTER_NOT_ENROLLED_ADVICE}")
        password_hash = tpool.execute(_hasher.hash, password)
        self._consume_codes([code_id], now)
        try:
            with self.db.client.start_session() as session, session.start_transaction():
                payer = payers.insert(id_number, name, phone, password_hash, now, session=session)
                Outbox(self.db).add("payer.registered", {"payer_id": payer["_id"]}, now, session=session)
        except DuplicatePayer:
            raise AppError("ALREADY_REGISTERED") from None
        log.info("payer %s registered", pseudonym(payer["_id"]))
        self._publish_outbox()
        return {"payer_id": payer["_id"]}

    @rpc()
    def login(self, id_number, name, password, insurance_type, sms_code):
        if insurance_type not in domain.INSURANCE_TYPES:
            raise AppError("VALIDATION_ERROR", details={"insurance_type": ["请选择险种"]})
        now = self.clock.now()
        payers = PayerRepository(self.db)
        try:
            payer = payers.by_id_number(domain.normalise_id_number(id_number))
        except domain.RuleViolation as violation:
            raise _rule_error(violation) from None  # a typo, not a guess: say so (tells nothing of who exists)
        if payer:
            until = domain.locked_until(payer, now)
            if until:
                raise AppError("ACCOUNT_LOCKED", details={
                    "retry_after_seconds": max(1, int((until - now).total_seconds()))})
        # Same answer and about the same time for an unknown ID, a wrong name and a wrong password.
        password_ok = _password_matches(payer["password_hash"] if payer else _DUMMY_HASH, password or "")
        if not payer or payer["name"] != (name or "").strip() or not password_ok:
            if payer:
                until = payers.record_failed_login(payer["_id"], now, domain.LockoutPolicy())
                if until:
                    log.warning("payer %s locked after repeated wrong passwords", pseudonym(payer["_id"]))
                    raise AppError("ACCOUNT_LOCKED", details={
                        "retry_after_seconds": int((until - now).total_seconds())})
            raise AppError("UNAUTHENTICATED")
        bureau = domain.VERIFIED_AT[insurance_type]
        if not self._enrolled(self._enrollments(payer["id_number"], bureau), payer["name"], insurance_type):
            raise AppError("NOT_ENROLLED", f"个体参保人员信息不存在。{domain.NOT_ENROLLED_ADVICE[bureau]}")
        code_id = self._check_code(payer["phone"], "login", sms_code, now)
        self._consume_codes([code_id], now)
        payers.reset_failed_logins(payer["_id"])
        session_id, expires_at = domain.new_session_id(), now + domain.TOKEN_TTL
        SessionRepository(self.db).create(session_id, payer["_id"], insurance_type, now, expires_at)
        log.info("payer %s logged in for %s", pseudonym(payer["_id"]), insurance_type)
        return {
            "token": domain.issue_token(self._secret, session_id, expires_at),
            "expires_at": expires_at.astimezone(domain.SHANGHAI).isoformat(),
            "payer": {"payer_id": payer["_id"], "name": payer["name"],
                      "id_number_masked": mask_id_number(payer["id_number"])},
            "insurance_type": insurance_type,
        }

    @rpc()
    def authenticate(self, token):
        """The principal a bearer token stands for; UNAUTHENTICATED if forged, expired or revoked."""
        now = self.clock.now()
        session_id = domain.parse_token(self._secret, token, now)
        session = session_id and SessionRepository(self.db).active(session_id, now)
        payer = session and PayerRepository(self.db).by_id(session["payer_id"])
        if not payer:
            raise AppError("UNAUTHENTICATED", "登录已失效，请重新登录")
        return {"payer_id": payer["_id"], "session_id": session_id, "insurance_type": session["insurance_type"],
                "id_number": payer["id_number"], "name": payer["name"], "phone": payer["phone"]}

    @rpc()
    def logout(self, session_id):
        SessionRepository(self.db).revoke(session_id, self.clock.now())

    @rpc()
    def change_phone(self, payer_id, new_phone, old_phone_code, new_phone_code):
        try:
            domain.check_phone(new_phone, "new_phone")
        except domain.RuleViolation as violation:
            raise _rule_error(violation) from None
        now, payers = self.clock.now(), PayerRepository(self.db)
        payer = payers.by_id(payer_id)
        if payer is None:
            raise AppError("UNAUTHENTICATED")
        if new_phone == payer["phone"]:
            raise AppError("VALIDATION_ERROR", details={"new_phone": ["新手机号码与原手机号码相同"]})
        # Both codes are checked before either is used, so one typo does not burn the other code.
        code_ids = [self._check_code(payer["phone"], "change_phone", old_phone_code, now, "old_phone_code"),
                    self._check_code(new_phone, "change_phone", new_phone_code, now, "new_phone_code")]
        self._consume_codes(code_ids, now)
        with self.db.client.start_session() as session, session.start_transaction():
            if not payers.change_phone(payer_id, payer["phone"], new_phone, now, session=session):
                raise AppError("CONFLICT", "手机号码已被修改，请刷新后重试")
            Outbox(self.db).add("payer.phone_changed", {"payer_id": payer_id}, now, session=session)
        self._publish_outbox()
        return {"phone_masked": mask_phone(new_phone)}

    @rpc()
    def payers_on_phone(self, payer_id):
        """Payers registered under the same phone as this one (代缴: paying for relatives)."""
        payers = PayerRepository(self.db)
        payer = payers.by_id(payer_id)
        if payer is None:
            raise AppError("UNAUTHENTICATED")
        return [{"payer_id": p["_id"], "name": p["name"], "id_number_masked": mask_id_number(p["id_number"]),
                 "is_self": p["_id"] == payer_id} for p in payers.by_phone(payer["phone"])]

    @timer(interval=5)
    def relay_events(self):
        """Publishes what a crash left in the outbox (the request path publishes right away)."""
        self._publish_outbox()
        metrics.refresh_outbox_backlog(self.name, self.db)
