"""证明开具 and 缴费记录 through the gateway: a payer registered and logged in over HTTP, payments arriving as
``order.paid`` events on the stack's broker (as the orders service publishes them), certificates downloaded
as PDFs and verified by their code."""
import io
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.standalone.events import event_dispatcher
from pypdf import PdfReader

from tests.support.http import Api, error_code
from tests.support.people import new_id_number, new_phone

PASSWORD = "pass1234word"
SHANGHAI = timezone(timedelta(hours=8))


def logged_in(api, sims, name, insurance_type="FE_PENSION"):
    """Register and log in over HTTP; returns (Api with the token, payer dict as order.paid carries it)."""
    id_number, phone = new_id_number(), new_phone()
    sims.enroll(id_number, name, insurance_type)
    assert api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "register"}).status_code == 202
    created = api.post("/api/v1/payers", {"id_number": id_number, "name": name, "phone": phone,
                                          "password": PASSWORD, "sms_code": sims.latest_sms_code(phone)})
    assert created.status_code == 201, created.text
    assert api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "login"}).status_code == 202
    session = api.post("/api/v1/sessions", {"id_number": id_number, "name": name, "password": PASSWORD,
                                            "insurance_type": insurance_type,
                                            "sms_code": sims.latest_sms_code(phone)})
    assert session.status_code == 201, session.text
    return (Api(api.base_url, session.json()["token"]),
            {"payer_id": created.json()["payer_id"], "id_number": id_number, "name": name})


def order_paid(payer, periods, paid_at, amount_fen=35000):
    order_id = uuid.uuid4().hex
    return {"event_id": uuid.uuid4().hex, "occurred_at": paid_at.isoformat(), "schema_version": 1,
            "order_id": order_id, "payer": payer, "insurance_type": "FE_PENSION",
            "amount_fen": amount_fen * len(periods), "paid_at": paid_at.isoformat(), "payment_id": uuid.uuid4().hex,
            "channel": "unionpay", "channel_txn_id": uuid.uuid4().hex,
            "records": [{"plan_id": f"{order_id[:8]}-{p}", "period": p, "amount_fen": amount_fen,
                         "tax_ticket_no": f"3231024{uuid.uuid4().int % 10 ** 13:013d}"} for p in periods]}


def wait_for_records(me, count, query="period_from=2024-01&period_to=2024-12", timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        answer = me.get(f"/api/v1/me/records?{query}")
        assert answer.status_code == 200, answer.text
        if answer.json()["count"] >= count or time.monotonic() > deadline:
            return answer.json()
        time.sleep(0.2)


def pdf_text(response):
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(response.content))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture(scope="module")
def dispatch(stack):
    return event_dispatcher({"AMQP_URI": stack.amqp_uri})


def test_records_certificates_and_verification(stack, api, sims, dispatch):
    me, payer = logged_in(api, sims, "周瑜")
    stranger, their_payer = logged_in(api, sims, "黄盖")
    first = order_paid(payer, ["2024-01", "2024-02"], datetime(2024, 3, 5, 9, 15, tzinfo=SHANGHAI))
    second = order_paid(payer, ["2024-03"], datetime(2024, 3, 25, 16, 30, tzinfo=SHANGHAI), amount_fen=35050)
    theirs = order_paid(their_payer, ["2024-01"], datetime(2024, 3, 6, 9, tzinfo=SHANGHAI))
    for event in (first, second, first, theirs):  # the first order delivered twice
        dispatch("orders", "order.paid", event)

    records = wait_for_records(me, 3)
    assert [(r["period"], r["amount"]) for r in records["records"]] == \
        [("2024-01", "350.00"), ("2024-02", "350.00"), ("2024-03", "350.50")]
    assert records["records"][0]["paid_at"] == "2024-03-05T09:15:00+08:00"
    wait_for_records(stranger, 1)
    time.sleep(0.5)  # the duplicate has surely been handled by now: still three
    assert wait_for_records(me, 3)["count"] == 3

    empty = me.get("/api/v1/me/records?period_from=2023-01&period_to=2023-12")
    assert empty.status_code == 200 and empty.json()["records"] == []
    assert empty.json()["message"] == "未查询到缴费记录"

    certifiable = me.get("/api/v1/me/certificates/records?paid_from=2024-03-01&paid_to=2024-03-31").json()
    assert certifiable["count"] == 3 and certifiable["total"] == "1050.50"

    tax = me.post("/api/v1/me/certificates", {"kind": "tax", "paid_from": "2024-03-01", "paid_to": "2024-03-31"})
    text, code = pdf_text(tax), tax.headers["X-Certificate-Code"]
    for expected in ["中华人民共和国税收完税证明", "周瑜", payer["id_number"], "2024-01-01至2024-01-31",
                     "2024-03-01至2024-03-31", "350.00", "350.50", "1050.50", "壹仟零伍拾元伍角", code,
                     f"{stack.gateway_url}/api/v1/certificates/{code}"]:
        assert expected in text, expected

    march = [r["record_id"] for r in certifiable["records"] if r["period"] == "2024-03"]
    payment = me.post("/api/v1/me/certificates", {"kind": "payment", "paid_from": "2024-03-01",
                                                  "paid_to": "2024-03-31", "record_ids": march})
    text = pdf_text(payment)
    assert "社会保险费缴费证明" in text and "周瑜" in text and "350.50" in text and "2024-01-01至" not in text
    assert payer["id_number"] not in text and payer["id_number"][-4:] in text
    assert payment.headers["X-Certificate-Code"] != code

    for issued, kind, total, count in [(tax, "tax", "1050.50", 3), (payment, "payment", "350.50", 1)]:
        verified = Api(stack.gateway_url).get(f"/api/v1/certificates/{issued.headers['X-Certificate-Code']}")
        assert verified.status_code == 200, verified.text
        body = verified.json()
        assert (body["valid"], body["kind"], body["total"], body["record_count"]) == (True, kind, total, count)
        assert body["payer_name_masked"] == "周*" and payer["id_number"] not in verified.text

    # another payer's record, or a made-up one: refused whole, nothing issued
    their_record = stranger.get("/api/v1/me/certificates/records?paid_from=2024-03-01&paid_to=2024-03-31"
                                ).json()["records"][0]["record_id"]
    for ids in ([their_record], march + [their_record], ["R-made-up"]):
        refused = me.post("/api/v1/me/certificates", {"kind": "tax", "paid_from": "2024-03-01",
                                                      "paid_to": "2024-03-31", "record_ids": ids})
        assert refused.status_code == 404 and error_code(refused) == "NOT_FOUND", refused.text

    nothing = me.post("/api/v1/me/certificates", {"kind": "payment", "paid_from": "2024-04-01",
                                                  "paid_to": "2024-04-30"})
    assert nothing.status_code == 404 and error_code(nothing) == "NO_RECORDS"
    assert nothing.json()["error"]["message"] == "未查询到缴费记录"


def test_bad_input_and_unknown_codes(stack, api, sims):
    me, _ = logged_in(api, sims, "鲁肃")
    for path in ("/api/v1/me/records?period_from=2024-05&period_to=2024-01",
                 "/api/v1/me/records?period_from=2020-01&period_to=2024-01",
                 "/api/v1/me/records?period_from=2024-1&period_to=2024-02",
                 "/api/v1/me/records",
                 "/api/v1/me/certificates/records?paid_from=2024-03-31&paid_to=2024-03-01",
                 "/api/v1/me/certificates/records?paid_from=2024-02-30&paid_to=2024-03-01"):
        answer = me.get(path)
        assert answer.status_code == 400 and error_code(answer) == "VALIDATION_ERROR", (path, answer.text)
        assert answer.json()["error"]["details"], path
    for body in ({"kind": "receipt", "paid_from": "2024-03-01", "paid_to": "2024-03-31"},
                 {"kind": "tax", "paid_from": "2024-03-01"},
                 {"kind": "tax", "paid_from": "2023-01-01", "paid_to": "2024-03-31"},
                 {"kind": "tax", "paid_from": "2024-03-01", "paid_to": "2024-03-31", "record_ids": "all"}):
        answer = me.post("/api/v1/me/certificates", body)
        assert answer.status_code == 400 and error_code(answer) == "VALIDATION_ERROR", (body, answer.text)
    anonymous = Api(stack.gateway_url)
    assert anonymous.get("/api/v1/me/records?period_from=2024-01&period_to=2024-02").status_code == 401
    assert anonymous.post("/api/v1/me/certificates", {"kind": "tax", "paid_from": "2024-03-01",
                                                      "paid_to": "2024-03-31"}).status_code == 401
    for code in ("AAAA-BBBB-CCCC-DDDD-EEEE", "x" * 80, "%24ne"):
        answer = anonymous.get(f"/api/v1/certificates/{code}")
        assert answer.status_code == 404 and error_code(answer) == "NOT_FOUND", answer.text
