"""identity's pure rules: ID numbers, phones, passwords, SMS codes, lock-out, tokens."""
from datetime import datetime, timedelta, timezone

import pytest

from identity import domain
from servicekit.clock import FakeClock

T0 = datetime(2026, 3, 25, 8, 59, 0, tzinfo=timezone.utc)  # 16:59 in Shanghai


class TestIdNumber:
    @pytest.mark.parametrize("valid", ["34052419800101001X", "11010519491231002X", "231002198503120016"])
    def test_valid_examples(self, valid):
        assert domain.normalise_id_number(valid) == valid

    def test_lowercase_x_is_normalised(self):
        assert domain.normalise_id_number("34052419800101001x") == "34052419800101001X"
        assert domain.normalise_id_number(" 11010519491231002x ") == "11010519491231002X"

    @pytest.mark.parametrize("bad_check", ["340524198001010010", "110105194912310021", "231002198503120017"])
    def test_bad_check_digit(self, bad_check):
        with pytest.raises(domain.RuleViolation) as refused:
            domain.normalise_id_number(bad_check)
        assert refused.value.code == "INVALID_ID_NUMBER" and "校验码" in refused.value.message

    @pytest.mark.parametrize("wrong_length", ["", "3405241980010100", "34052419800101001X0", "34052480010100"])
    def test_wrong_length(self, wrong_length):
        with pytest.raises(domain.RuleViolation) as refused:
            domain.normalise_id_number(wrong_length)
        assert refused.value.code == "INVALID_ID_NUMBER"

    @pytest.mark.parametrize("first17", ["34052419800230001", "34052419801301001", "34052418991231001",
                                         "34052419810229001"])
    def test_bad_birth_date_even_with_a_matching_check_digit(self, first17):
        with pytest.raises(domain.RuleViolation) as refused:
            domain.normalise_id_number(first17 + domain.id_check_char(first17))
        assert "出生日期" in refused.value.message

    def test_leap_day_birth_is_valid(self):
        first17 = "23010219800229001"
        assert domain.normalise_id_number(first17 + domain.id_check_char(first17)).startswith(first17)

    @pytest.mark.parametrize("junk", ["X4052419800101001X", "34052419800101001Y", "３４０５２４１９８００１０１００１X"])
    def test_non_digits(self, junk):
        with pytest.raises(domain.RuleViolation):
            domain.normalise_id_number(junk)

    def test_abolished_region_codes_stay_valid(self):
        first17 = "23102119700101002"  # 231021: an abolished 牡丹江 code still printed on old cards
        assert domain.normalise_id_number(first17 + domain.id_check_char(first17))


class TestPasswordPolicy:
    @pytest.mark.parametrize("ok", ["abc12345", "A1b2c3d4e5", "密码abc12345"])
    def test_accepts_letters_and_digits_of_eight_or_more(self, ok):
        domain.check_password_policy(ok)

    @pytest.mark.parametrize("weak", ["abc1234", "abcdefgh", "12345678", "", "a1" * 33])
    def test_refuses_short_long_or_single_class(self, weak):
        with pytest.raises(domain.RuleViolation) as refused:
            domain.check_password_policy(weak)
        assert refused.value.code == "VALIDATION_ERROR" and refused.value.field == "password"


class TestPhone:
    @pytest.mark.parametrize("ok", ["13800138000", "19912345678"])
    def test_mainland_mobile(self, ok):
        assert domain.check_phone(ok) == ok

    @pytest.mark.parametrize("bad", ["12800138000", "1380013800", "138001380000", "+8613800138000", None])
    def test_refuses_others(self, bad):
        with pytest.raises(domain.RuleViolation):
            domain.check_phone(bad)


class TestSmsCodes:
    policy = domain.SmsPolicy()

    def code(self, created, **overrides):
        doc = {"used": False, "attempts": 0, "expires_at": created + self.policy.ttl}
        doc.update(overrides)
        return doc

    def test_six_digits(self):
        codes = {domain.new_sms_code() for _ in range(200)}
        assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 150

    def test_usable_until_five_minutes(self):
        clock = FakeClock(T0)
        doc = self.code(clock.now())
        clock.advance(minutes=4, seconds=59)
        assert domain.code_is_usable(doc, clock.now(), self.policy)
        clock.advance(seconds=1)
        assert not domain.code_is_usable(doc, clock.now(), self.policy)

    def test_single_use_and_five_wrong_tries(self):
        assert not domain.code_is_usable(self.code(T0, used=True), T0, self.policy)
        assert domain.code_is_usable(self.code(T0, attempts=4), T0, self.policy)
        assert not domain.code_is_usable(self.code(T0, attempts=5), T0, self.policy)

    def test_hash_is_keyed_and_bound_to_phone_and_purpose(self):
        h = domain.hash_sms_code(b"k", "13800138000", "login", "123456")
        assert "123456" not in h
        assert h != domain.hash_sms_code(b"other", "13800138000", "login", "123456")
        assert h != domain.hash_sms_code(b"k", "13800138001", "login", "123456")
        assert h != domain.hash_sms_code(b"k", "13800138000", "register", "123456")

    def test_daily_limit_counts_shanghai_days(self):
        assert domain.sms_day(datetime(2026, 3, 24, 15, 59, tzinfo=timezone.utc)) == "2026-03-24"
        assert domain.sms_day(datetime(2026, 3, 24, 16, 0, tzinfo=timezone.utc)) == "2026-03-25"


class TestLockout:
    def test_lock_lasts_fifteen_minutes(self):
        clock = FakeClock(T0)
        policy = domain.LockoutPolicy()
        payer = {"locked_until": clock.now() + policy.lock_for}
        clock.advance(minutes=14, seconds=59)
        assert domain.locked_until(payer, clock.now()) == payer["locked_until"]
        clock.advance(seconds=1)
        assert domain.locked_until(payer, clock.now()) is None
        assert domain.locked_until({"locked_until": None}, clock.now()) is None


class TestTokens:
    secret = b"s3cret"

    def test_round_trip_until_expiry(self):
        clock = FakeClock(T0)
        token = domain.issue_token(self.secret, "sid", clock.now() + domain.TOKEN_TTL)
        assert domain.parse_token(self.secret, token, clock.now()) == "sid"
        clock.advance(minutes=30)
        assert domain.parse_token(self.secret, token, clock.now()) is None

    def test_forged_or_altered_tokens_fail(self):
        token = domain.issue_token(self.secret, "sid", T0 + timedelta(minutes=30))
        assert domain.parse_token(b"other", token, T0) is None
        body, _, sig = token.rpartition(".")
        longer = body.replace(str(int((T0 + timedelta(minutes=30)).timestamp())),
                              str(int((T0 + timedelta(days=30)).timestamp())))
        assert domain.parse_token(self.secret, f"{longer}.{sig}", T0) is None
        assert domain.parse_token(self.secret, token.replace("sid", "sie"), T0) is None
        for junk in ("", "v1", "v1.a.b", None, "x" * 500):
            assert domain.parse_token(self.secret, junk, T0) is None
