"""参保信息, 缴费计划 and 牡丹江 缴费申报 through the gateway, the bureau simulators playing 人社 and 医保."""
import uuid

import requests

from tests.support.http import Api, add_bureau_plan, error_code, sync_bureaus
from tests.support.people import new_id_number, new_phone

PASSWORD = "pass1234word"


def session_for(api, sims, id_number, name, insurance_type):
    """Register (the enrolment must be synced for the tax-registry types) and log in; an Api with the token."""
    phone = new_phone()
    api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "register"})
    created = api.post("/api/v1/payers", {"id_number": id_number, "name": name, "phone": phone,
                                          "password": PASSWORD, "sms_code": sims.latest_sms_code(phone)})
    assert created.status_code == 201, created.text
    api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "login"})
    login = api.post("/api/v1/sessions", {"id_number": id_number, "name": name, "password": PASSWORD,
                                          "insurance_type": insurance_type,
                                          "sms_code": sims.latest_sms_code(phone)})
    assert login.status_code == 201, login.text
    return Api(api.base_url, login.json()["token"])


def test_three_monthly_hr_plans_oldest_first(api, sims):
    id_number, name = new_id_number(), "周一"
    sims.enroll(id_number, name, "FE_PENSION", enrolled_on="2020-01-01")
    for period in ("2025-03", "2025-01", "2025-02"):
        add_bureau_plan(sims, f"HR-{id_number}-{period}", id_number, "FE_PENSION", period, "350.00")
    sync_bureaus(sims)
    me = session_for(api, sims, id_number, name, "FE_PENSION")

    enrollment = me.get("/api/v1/me/enrollment")
    assert enrollment.status_code == 200, enrollment.text
    assert {k: enrollment.json()[k] for k in ("insurance_type", "region_code", "status", "enrolled_on")} == \
        {"insurance_type": "FE_PENSION", "region_code": "230102", "status": "active", "enrolled_on": "2020-01-01"}

    answer = me.get("/api/v1/me/plans")
    assert answer.status_code == 200, answer.text
    plans = answer.json()["plans"]
    assert [(p["period"], p["amount"], p["status"]) for p in plans] == \
        [("2025-01", "350.00", "unpaid"), ("2025-02", "350.00", "unpaid"), ("2025-03", "350.00", "unpaid")]
    assert all(p["deadline"].endswith("+08:00") and "T17:00:00" in p["deadline"] for p in plans)
    assert answer.json()["message"] is None


def test_rr_medical_payer_sees_the_medical_bureaus_annual_plan(api, sims):
    id_number, name = new_id_number(), "吴二"
    sims.enroll(id_number, name, "RR_MEDICAL", region_code="230103")
    add_bureau_plan(sims, f"MED-{id_number}", id_number, "RR_MEDICAL", "2026-01", "380.00",
                    deadline="2025-12-31T17:00:00+08:00")
    sync_bureaus(sims)
    me = session_for(api, sims, id_number, name, "RR_MEDICAL")
    enrollment = me.get("/api/v1/me/enrollment").json()
    assert (enrollment["region_code"], enrollment["source"]) == ("230103", "medical_bureau")
    plans = me.get("/api/v1/me/plans").json()["plans"]
    assert [(p["plan_id"], p["period"], p["amount"], p["deadline"]) for p in plans] == \
        [(f"MED-{id_number}", "2026-01", "380.00", "2025-12-31T17:00:00+08:00")]


def test_no_plans_shows_the_message_and_advice(api, sims):
    id_number, name = new_id_number(), "郑三"
    sims.enroll(id_number, name, "FE_MEDICAL")
    sync_bureaus(sims)
    me = session_for(api, sims, id_number, name, "FE_MEDICAL")
    body = me.get("/api/v1/me/plans").json()
    assert body["plans"] == []
    assert body["message"].startswith("当前没有可缴费计划") and "主管税务机关" in body["advice"]
    assert error_code(me.get("/api/v1/me/declaration-options")) == "CONFLICT"
    assert error_code(Api(api.base_url).get("/api/v1/me/plans")) == "UNAUTHENTICATED"


def test_mudanjiang_payer_declares_gets_plans_and_voids(api, sims):
    id_number, name = new_id_number(region="231002"), "赵丽"
    sims.enroll(id_number, name, "FE_PENSION", region_code="231002", enrolled_on="2020-01-01")
    sync_bureaus(sims)
    me = session_for(api, sims, id_number, name, "FE_PENSION")
    assert "缴费申报" in me.get("/api/v1/me/plans").json()["advice"]

    options = me.get("/api/v1/me/declaration-options")
    assert options.status_code == 200, options.text
    grades, periods = options.json()["grades"], options.json()["periods"]
    assert (grades[0]["base_ratio"], grades[-1]["base_ratio"], options.json()["rate"]) == ("0.60", "3.00", "0.20")
    lowest = grades[0]

    skipped = me.post("/api/v1/me/declarations", {"periods": periods[1:2], "grade": lowest["grade"]})
    assert error_code(skipped) == "PLAN_SEQUENCE_VIOLATION"
    assert error_code(me.post("/api/v1/me/declarations", {"periods": ["2025-13"], "grade": 1})) == \
        "VALIDATION_ERROR"
    assert error_code(me.post("/api/v1/me/declarations", {"periods": periods[:1], "grade": "1"})) == \
        "VALIDATION_ERROR"

    declared = me.post("/api/v1/me/declarations", {"periods": periods[:3], "grade": lowest["grade"]})
    assert declared.status_code == 201, declared.text
    declaration = declared.json()
    assert declaration["status"] == "confirmed" and declaration["monthly_amount"] == lowest["monthly_amount"]
    plans = me.get("/api/v1/me/plans").json()["plans"]
    assert [(p["period"], p["amount"]) for p in plans] == [(p, lowest["monthly_amount"]) for p in periods[:3]]
    listed = me.get("/api/v1/me/declarations").json()["declarations"]
    assert [(d["declaration_id"], d["status"], d["periods"]) for d in listed] == \
        [(declaration["declaration_id"], "confirmed", periods[:3])]

    voided = me.delete(f"/api/v1/me/declarations/{declaration['declaration_id']}")
    assert voided.status_code == 200 and voided.json()["status"] == "voided", voided.text
    assert me.get("/api/v1/me/plans").json()["plans"] == []
    assert me.get("/api/v1/me/declarations").json()["declarations"][0]["status"] == "voided"
    assert error_code(me.delete(f"/api/v1/me/declarations/{uuid.uuid4().hex}")) == "NOT_FOUND"
    assert me.get("/api/v1/me/declaration-options").json()["periods"][0] == periods[0]


def test_ready_shows_plans_sync(stack, sims):
    sync_bureaus(sims)
    checks = requests.get(f"{stack.gateway_url}/health/ready", timeout=10).json()["checks"]
    assert checks["plans_sync"] == "fresh"
