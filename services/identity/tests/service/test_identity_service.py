"""identity against the real broker and database, the simulators playing SMS gateway and bureaus."""
import pytest

from servicekit.errors import AppError
from tests.support.people import new_id_number, new_phone

PASSWORD = "secret123"


def register(identity, sims, id_number, name, phone, password=PASSWORD):
    identity.send_sms_code(phone, "register")
    return identity.register(id_number, name, phone, password, sims.latest_sms_code(phone))


def login(identity, sims, id_number, name, phone, insurance_type, password=PASSWORD):
    identity.send_sms_code(phone, "login")
    return identity.login(id_number, name, password, insurance_type, sims.latest_sms_code(phone))


@pytest.fixture
def enrolled(sims):
    id_number, name, phone = new_id_number(), "钱七", new_phone()
    sims.enroll(id_number, name, "FE_PENSION")
    sims.enroll(id_number, name, "RR_MEDICAL")
    return id_number, name, phone


def test_register_then_login_per_type(identity, sims, enrolled, clock):
    id_number, name, phone = enrolled
    payer_id = register(identity, sims, id_number, name, phone)["payer_id"]
    session = login(identity, sims, id_number, name, phone, "FE_PENSION")
    assert session["payer"]["payer_id"] == payer_id
    principal = identity.authenticate(session["token"])
    assert (principal["payer_id"], principal["insurance_type"]) == (payer_id, "FE_PENSION")
    with pytest.raises(AppError) as too_soon:
        identity.send_sms_code(phone, "login")
    assert too_soon.value.code == "SMS_RATE_LIMITED"
    clock.advance(seconds=61)
    medical = login(identity, sims, id_number, name, phone, "RR_MEDICAL")
    assert identity.authenticate(medical["token"])["insurance_type"] == "RR_MEDICAL"


def test_duplicate_registration_refused(identity, sims, enrolled):
    id_number, name, phone = enrolled
    register(identity, sims, id_number, name, phone)
    with pytest.raises(AppError) as refused:
        register(identity, sims, id_number, name, new_phone())
    assert refused.value.code == "ALREADY_REGISTERED"


def test_not_enrolled_cannot_register_nor_log_in_for_missing_type(identity, sims, enrolled):
    stranger = new_id_number()
    with pytest.raises(AppError) as refused:
        register(identity, sims, stranger, "孙八", new_phone())
    assert refused.value.code == "NOT_ENROLLED"
    assert "个体参保人员信息不存在" in refused.value.message

    id_number, name, phone = enrolled
    register(identity, sims, id_number, name, phone)
    with pytest.raises(AppError) as refused:
        login(identity, sims, id_number, name, phone, "FE_MEDICAL")
    assert refused.value.code == "NOT_ENROLLED"
    assert "主管税务机关" in refused.value.message


def test_code_is_single_use(identity, sims, enrolled):
    id_number, name, phone = enrolled
    identity.send_sms_code(phone, "register")
    code = sims.latest_sms_code(phone)
    identity.register(id_number, name, phone, PASSWORD, code)
    other_id = new_id_number()
    sims.enroll(other_id, "周九", "FE_PENSION")
    with pytest.raises(AppError) as refused:
        identity.register(other_id, "周九", phone, PASSWORD, code)
    assert refused.value.code == "SMS_CODE_INVALID"


def test_lockout_after_five_wrong_passwords(identity, sims, enrolled):
    id_number, name, phone = enrolled
    register(identity, sims, id_number, name, phone)
    codes = []
    for attempt in range(4):
        with pytest.raises(AppError) as refused:
            identity.login(id_number, name, "wrong1234", "FE_PENSION", "000000")
        codes.append(refused.value.code)
    assert codes == ["UNAUTHENTICATED"] * 4
    with pytest.raises(AppError) as locked:
        identity.login(id_number, name, "wrong1234", "FE_PENSION", "000000")
    assert locked.value.code == "ACCOUNT_LOCKED"
    assert 0 < locked.value.details["retry_after_seconds"] <= 15 * 60
    # even the right password is refused while locked
    with pytest.raises(AppError) as still_locked:
        login(identity, sims, id_number, name, phone, "FE_PENSION")
    assert still_locked.value.code == "ACCOUNT_LOCKED"


def test_phone_change_needs_both_codes(identity, sims, enrolled, clock):
    id_number, name, phone = enrolled
    payer_id = register(identity, sims, id_number, name, phone)["payer_id"]
    new = new_phone()
    identity.send_sms_code(phone, "change_phone")
    old_code = sims.latest_sms_code(phone)
    identity.send_sms_code(new, "change_phone")
    new_code = sims.latest_sms_code(new)
    with pytest.raises(AppError) as refused:
        identity.change_phone(payer_id, new, old_code, "999999" if new_code != "999999" else "888888")
    assert refused.value.code == "SMS_CODE_INVALID"
    # the old-phone code was not burnt by the other code's typo
    assert identity.change_phone(payer_id, new, old_code, new_code)["phone_masked"].endswith(new[-4:])
    # login codes now go to the new phone only
    clock.advance(seconds=61)
    session = login(identity, sims, id_number, name, new, "FE_PENSION")
    assert identity.authenticate(session["token"])["phone"] == new


def test_code_expires_after_five_minutes(identity, sims, enrolled, clock):
    id_number, name, phone = enrolled
    identity.send_sms_code(phone, "register")
    code = sims.latest_sms_code(phone)
    clock.advance(minutes=5, seconds=1)
    with pytest.raises(AppError) as refused:
        identity.register(id_number, name, phone, PASSWORD, code)
    assert refused.value.code == "SMS_CODE_INVALID"


def test_five_wrong_tries_void_the_code(identity, sims, enrolled):
    id_number, name, phone = enrolled
    identity.send_sms_code(phone, "register")
    code = sims.latest_sms_code(phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        with pytest.raises(AppError):
            identity.register(id_number, name, phone, PASSWORD, wrong)
    with pytest.raises(AppError) as refused:
        identity.register(id_number, name, phone, PASSWORD, code)
    assert refused.value.code == "SMS_CODE_INVALID"


def test_send_limits_per_purpose_and_per_day(identity, sims, clock):
    phone = new_phone()
    identity.send_sms_code(phone, "register")
    identity.send_sms_code(phone, "login")  # another purpose is not throttled by the first
    with pytest.raises(AppError) as throttled:
        identity.send_sms_code(phone, "register")
    assert throttled.value.code == "SMS_RATE_LIMITED"
    for _ in range(8):  # 10 sends in all today
        clock.advance(seconds=61)
        identity.send_sms_code(phone, "register")
    clock.advance(seconds=61)
    with pytest.raises(AppError) as daily:
        identity.send_sms_code(phone, "change_phone")
    assert daily.value.code == "SMS_RATE_LIMITED"


def test_lock_expires_after_fifteen_minutes(identity, sims, enrolled, clock):
    id_number, name, phone = enrolled
    register(identity, sims, id_number, name, phone)
    for _ in range(5):
        with pytest.raises(AppError):
            identity.login(id_number, name, "wrong1234", "FE_PENSION", "000000")
    clock.advance(minutes=15, seconds=1)
    assert login(identity, sims, id_number, name, phone, "FE_PENSION")["token"]


def test_logout_revokes_and_token_expires(identity, sims, enrolled, clock):
    id_number, name, phone = enrolled
    register(identity, sims, id_number, name, phone)
    first = login(identity, sims, id_number, name, phone, "FE_PENSION")
    principal = identity.authenticate(first["token"])
    identity.logout(principal["session_id"])
    with pytest.raises(AppError) as revoked:
        identity.authenticate(first["token"])
    assert revoked.value.code == "UNAUTHENTICATED"

    clock.advance(seconds=61)
    second = login(identity, sims, id_number, name, phone, "FE_PENSION")
    clock.advance(minutes=30, seconds=62)
    with pytest.raises(AppError) as expired:
        identity.authenticate(second["token"])
    assert expired.value.code == "UNAUTHENTICATED"


def test_payers_sharing_a_phone(identity, sims, clock):
    phone, payer_ids = new_phone(), []
    for name in ("吴一", "吴二"):
        id_number = new_id_number()
        sims.enroll(id_number, name, "RR_PENSION")
        payer_ids.append(register(identity, sims, id_number, name, phone)["payer_id"])
        clock.advance(seconds=61)
    stranger_id = new_id_number()
    sims.enroll(stranger_id, "郑三", "RR_PENSION")
    register(identity, sims, stranger_id, "郑三", new_phone())

    listed = identity.payers_on_phone(payer_ids[0])
    assert [p["payer_id"] for p in listed] == payer_ids
    assert [p["is_self"] for p in listed] == [True, False]
    assert all("*" in p["id_number_masked"] and "id_number" not in p for p in listed)
