"""注册 → 登录 (two types) → 修改手机号 → 退出, over HTTP through the gateway with the simulators, and every
identity error path of API.md: the right code, the envelope, and nothing changed."""
import pytest

from tests.support.http import error_code
from tests.support.people import new_id_number, new_phone

PASSWORD = "pass1234word"


def send_code(api, phone, purpose):
    answer = api.post("/api/v1/sms-codes", {"phone": phone, "purpose": purpose})
    assert answer.status_code == 202, answer.text
    assert answer.json()["expires_in"] == 300


def register(api, sims, id_number, name, phone, password=PASSWORD):
    send_code(api, phone, "register")
    return api.post("/api/v1/payers", {"id_number": id_number, "name": name, "phone": phone,
                                       "password": password, "sms_code": sims.latest_sms_code(phone)})


def login(api, sims, id_number, name, phone, insurance_type, password=PASSWORD):
    send_code(api, phone, "login")
    return api.post("/api/v1/sessions", {"id_number": id_number, "name": name, "password": password,
                                         "insurance_type": insurance_type, "sms_code": sims.latest_sms_code(phone)})


@pytest.fixture
def person(sims):
    id_number, name, phone = new_id_number(), "刘洋", new_phone()
    sims.enroll(id_number, name, "FE_PENSION")
    sims.enroll(id_number, name, "RR_MEDICAL")
    return id_number, name, phone


def test_register_login_two_types_change_phone_logout(api, sims, person, clock):
    id_number, name, phone = person
    created = register(api, sims, id_number.lower(), name, phone)
    assert created.status_code == 201, created.text
    payer_id = created.json()["payer_id"]

    pension = login(api, sims, id_number, name, phone, "FE_PENSION")
    assert pension.status_code == 201, pension.text
    body = pension.json()
    assert body["insurance_type"] == "FE_PENSION"
    assert body["payer"] == {"payer_id": payer_id, "name": name,
                             "id_number_masked": id_number[:4] + "*" * 10 + id_number[-4:]}
    assert body["expires_at"].endswith("+08:00")

    clock.advance(seconds=61)
    medical = login(api, sims, id_number, name, phone, "RR_MEDICAL")
    assert medical.status_code == 201 and medical.json()["insurance_type"] == "RR_MEDICAL"
    token = medical.json()["token"]

    new = new_phone()
    send_code(api, phone, "change_phone")
    old_code = sims.latest_sms_code(phone)
    send_code(api, new, "change_phone")
    changed = api.put("/api/v1/me/phone", {"new_phone": new, "old_phone_code": old_code,
                                           "new_phone_code": sims.latest_sms_code(new)}, token=token)
    assert changed.status_code == 200, changed.text

    related = api.get("/api/v1/me/related-payers", token=token)
    assert related.status_code == 200 and related.json()["payers"][0]["is_self"] is True

    clock.advance(seconds=61)
    assert login(api, sims, id_number, name, new, "FE_PENSION").status_code == 201  # code to the new phone

    assert api.delete("/api/v1/sessions/current", token=token).status_code == 204
    assert error_code(api.get("/api/v1/me/related-payers", token=token)) == "UNAUTHENTICATED"
    # the other session is untouched by this logout
    assert api.get("/api/v1/me/related-payers", token=pension.json()["token"]).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"phone": "13800138000"}, "purpose"),
    ({"phone": "13800138000", "purpose": "shopping"}, "purpose"),
    ({"phone": "13800138000", "purpose": "login", "extra": 1}, "extra"),
    ({"phone": 13800138000, "purpose": "login"}, "phone"),
])
def test_sms_code_request_validation(api, body, field):
    answer = api.post("/api/v1/sms-codes", body)
    assert answer.status_code == 400 and error_code(answer) == "VALIDATION_ERROR"
    assert field in answer.json()["error"]["details"]


def test_malformed_bodies_are_validation_errors(api):
    for raw in (b"{not json", b"[1,2]", "{\"phone\": \"\u0000\"}".encode(), b"\xff\xfe"):
        answer = api.request("POST", "/api/v1/payers", data=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and error_code(answer) == "VALIDATION_ERROR", raw
    huge = api.request("POST", "/api/v1/payers", data=b"{" + b" " * 70_000 + b"}")
    assert huge.status_code == 400 and error_code(huge) == "VALIDATION_ERROR"


def test_bad_phone_is_refused_before_any_sms(api):
    answer = api.post("/api/v1/sms-codes", {"phone": "12345", "purpose": "register"})
    assert answer.status_code == 400 and error_code(answer) == "VALIDATION_ERROR"
    assert "phone" in answer.json()["error"]["details"]


def test_registration_errors_change_nothing(api, sims, person):
    id_number, name, phone = person
    send_code(api, phone, "register")
    code = sims.latest_sms_code(phone)
    base = {"id_number": id_number, "name": name, "phone": phone, "password": PASSWORD, "sms_code": code}

    bad_id = api.post("/api/v1/payers", {**base, "id_number": id_number[:-1] + ("0" if id_number[-1] != "0" else "1")})
    assert bad_id.status_code == 400 and error_code(bad_id) == "INVALID_ID_NUMBER"
    weak = api.post("/api/v1/payers", {**base, "password": "abcdefgh"})
    assert weak.status_code == 400 and "password" in weak.json()["error"]["details"]
    wrong_code = api.post("/api/v1/payers", {**base, "sms_code": f"{(int(code) + 1) % 1_000_000:06d}"})
    assert wrong_code.status_code == 400 and error_code(wrong_code) == "SMS_CODE_INVALID"
    wrong_name = api.post("/api/v1/payers", {**base, "name": "李鬼"})
    assert wrong_name.status_code == 403 and error_code(wrong_name) == "NOT_ENROLLED"
    assert "个体参保人员信息不存在" in wrong_name.json()["error"]["message"]
    # none of the refusals registered anyone or burnt the code
    ok = api.post("/api/v1/payers", base)
    assert ok.status_code == 201, ok.text
    again = register(api, sims, id_number, name, new_phone())
    assert again.status_code == 409 and error_code(again) == "ALREADY_REGISTERED"


def test_unenrolled_person_cannot_register(api, sims):
    answer = register(api, sims, new_id_number(), "陈晨", new_phone())
    assert answer.status_code == 403 and error_code(answer) == "NOT_ENROLLED"


def test_sms_rate_limit(api):
    phone = new_phone()
    send_code(api, phone, "register")
    again = api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "register"})
    assert again.status_code == 429 and error_code(again) == "SMS_RATE_LIMITED"


def test_login_errors_look_alike_and_lock_out(api, sims, person, clock):
    id_number, name, phone = person
    assert register(api, sims, id_number, name, phone).status_code == 201
    clock.advance(seconds=61)

    def attempt(**changes):
        body = {"id_number": id_number, "name": name, "password": PASSWORD, "insurance_type": "FE_PENSION",
                "sms_code": "000000", **changes}
        return api.post("/api/v1/sessions", body)

    unknown = attempt(id_number=new_id_number())
    wrong_name = attempt(name="刘海")
    wrong_password = attempt(password="nope12345")
    bodies = [r.json() for r in (unknown, wrong_name, wrong_password)]
    assert all(r.status_code == 401 for r in (unknown, wrong_name, wrong_password))
    assert bodies[0] == bodies[1] == bodies[2]  # nothing tells which field was wrong
    assert error_code(attempt(id_number="123")) == "INVALID_ID_NUMBER"

    not_enrolled = login(api, sims, id_number, name, phone, "RR_PENSION")
    assert not_enrolled.status_code == 403 and error_code(not_enrolled) == "NOT_ENROLLED"
    wrong_code = attempt()
    assert wrong_code.status_code == 400 and error_code(wrong_code) == "SMS_CODE_INVALID"

    for _ in range(2):  # wrong name and wrong password above were failures 1 and 2
        assert attempt(password="nope12345").status_code == 401
    locked = attempt(password="nope12345")
    assert locked.status_code == 423 and error_code(locked) == "ACCOUNT_LOCKED"
    assert locked.json()["error"]["details"]["retry_after_seconds"] > 14 * 60
    clock.advance(seconds=61)
    assert error_code(login(api, sims, id_number, name, phone, "FE_PENSION")) == "ACCOUNT_LOCKED"


def test_phone_change_with_a_wrong_code_changes_nothing(api, sims, person, clock):
    id_number, name, phone = person
    register(api, sims, id_number, name, phone)
    clock.advance(seconds=61)
    token = login(api, sims, id_number, name, phone, "FE_PENSION").json()["token"]
    new = new_phone()
    send_code(api, phone, "change_phone")
    refused = api.put("/api/v1/me/phone", {"new_phone": new, "old_phone_code": sims.latest_sms_code(phone),
                                           "new_phone_code": "123456"}, token=token)
    assert refused.status_code == 400 and error_code(refused) == "SMS_CODE_INVALID"
    assert set(refused.json()["error"]["details"]) == {"new_phone_code"}  # which of the two codes was wrong
    clock.advance(seconds=61)
    assert login(api, sims, id_number, name, phone, "FE_PENSION").status_code == 201  # still the old phone


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer v1.forged.9999999999.sig", "Basic abc"])
def test_missing_or_forged_tokens(api, header):
    headers = {"Authorization": header} if header else {}
    answer = api.request("GET", "/api/v1/me/related-payers", headers=headers)
    assert answer.status_code == 401 and error_code(answer) == "UNAUTHENTICATED"


def test_unknown_routes_and_methods_use_the_envelope(api):
    assert error_code(api.get("/api/v1/nothing-here")) == "NOT_FOUND"
    answer = api.request("PATCH", "/api/v1/payers")
    assert answer.status_code == 404 and error_code(answer) == "NOT_FOUND"


def test_request_id_is_echoed_or_made(api):
    assert api.get("/health", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    made = api.get("/health", headers={"X-Request-Id": "<script>"}).headers["X-Request-Id"]
    assert made != "<script>" and len(made) == 32


def test_gateway_metrics_count_requests_by_endpoint_and_result(api):
    api.post("/api/v1/sms-codes", {"phone": "bad", "purpose": "login"})
    text = api.get("/metrics").text
    assert 'sitax_entrypoint_results_total{entrypoint="send_sms_code",result="VALIDATION_ERROR",service="gateway"}' in text
    assert 'sitax_entrypoint_results_total{entrypoint="health",result="200",service="gateway"}' in text
    assert "sitax_entrypoint_seconds_bucket" in text
