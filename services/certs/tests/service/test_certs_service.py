"""certs on the real broker and database: order.paid in, records and certificates out."""
import base64
import io
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from pypdf import PdfReader

from servicekit.errors import AppError
from tests.support.people import new_id_number

SHANGHAI = timezone(timedelta(hours=8))


def order_paid(payer, periods, paid_at, amount_fen=35000, insurance_type="FE_PENSION", **extra):
    order_id = uuid.uuid4().hex
    records = [{"plan_id": f"{order_id[:8]}-{p}", "period": p, "amount_fen": amount_fen,
                "tax_ticket_no": f"3231024{uuid.uuid4().int % 10 ** 13:013d}"} for p in periods]
    return {"event_id": uuid.uuid4().hex, "occurred_at": paid_at.isoformat(), "schema_version": 1,
            "order_id": order_id, "payer": payer, "insurance_type": insurance_type,
            "amount_fen": amount_fen * len(periods), "paid_at": paid_at.isoformat(),
            "payment_id": uuid.uuid4().hex, "channel": "unionpay", "channel_txn_id": uuid.uuid4().hex,
            "records": records, **extra}


def new_payer(name):
    return {"payer_id": uuid.uuid4().hex, "id_number": new_id_number(region="231002"), "name": name}


def code_of(exc_info):
    return exc_info.value.code


@pytest.fixture(scope="module")
def paid(publish):
    """A payer with two orders paid in March 2024 and one FE_MEDICAL order; another payer with one order."""
    payer, other = new_payer("赵六"), new_payer("孙七")
    first = order_paid(payer, ["2024-01", "2024-02"], datetime(2024, 3, 5, 10, 30, tzinfo=SHANGHAI),
                       region_code="231002")
    second = order_paid(payer, ["2024-03"], datetime(2024, 3, 20, 23, 59, tzinfo=SHANGHAI), amount_fen=35050)
    medical = order_paid(payer, ["2024-01"], datetime(2024, 3, 6, 9, tzinfo=SHANGHAI), insurance_type="FE_MEDICAL")
    theirs = order_paid(other, ["2024-01"], datetime(2024, 3, 6, 9, tzinfo=SHANGHAI))
    for event in (first, first, second, medical, theirs):  # first twice: a redelivery
        publish(event)
    return {"payer": payer, "other": other, "first": first, "second": second, "theirs": theirs}


def test_order_paid_is_idempotent(certs, publish, paid):
    payer = paid["payer"]
    assert certs.records(payer["payer_id"], "FE_PENSION", "2024-01", "2024-12")["count"] == 3
    # the same order published again under a new event id (a producer retry) adds nothing either
    publish({**paid["first"], "event_id": uuid.uuid4().hex})
    answer = certs.records(payer["payer_id"], "FE_PENSION", "2024-01", "2024-12")
    assert [r["period"] for r in answer["records"]] == ["2024-01", "2024-02", "2024-03"]
    assert answer["total"] == "1050.50"
    record = answer["records"][0]
    assert record["amount"] == "350.00" and record["paid_at"] == "2024-03-05T10:30:00+08:00"
    assert record["tax_ticket_no"] == paid["first"]["records"][0]["tax_ticket_no"]
    assert "id_number" not in record


def test_records_are_per_insurance_type_and_period_range(certs, paid):
    payer = paid["payer"]["payer_id"]
    assert [r["period"] for r in certs.records(payer, "FE_PENSION", "2024-02", "2024-02")["records"]] == ["2024-02"]
    assert certs.records(payer, "FE_MEDICAL", "2024-01", "2024-12")["count"] == 1
    empty = certs.records(payer, "FE_PENSION", "2023-01", "2023-12")
    assert empty["records"] == [] and empty["message"] == "未查询到缴费记录"
    with pytest.raises(AppError) as refused:
        certs.records(payer, "FE_PENSION", "2024-05", "2024-01")
    assert code_of(refused) == "VALIDATION_ERROR" and "period_to" in refused.value.details
    with pytest.raises(AppError) as refused:
        certs.records(payer, "FE_PENSION", "2020-01", "2024-01")
    assert code_of(refused) == "VALIDATION_ERROR"


def test_certificate_records_by_shanghai_payment_date(certs, paid):
    payer = paid["payer"]["payer_id"]
    # paid at 23:59 Shanghai on 03-20 (15:59 UTC): belongs to 03-20, not 03-21
    assert [r["period"] for r in certs.certificate_records(payer, "FE_PENSION", "2024-03-20", "2024-03-20")
            ["records"]] == ["2024-03"]
    assert certs.certificate_records(payer, "FE_PENSION", "2024-03-21", "2024-03-31")["message"] == "未查询到缴费记录"
    assert certs.certificate_records(payer, "FE_PENSION", "2024-03-01", "2024-03-31")["count"] == 3


def pdf_text(answer):
    reader = PdfReader(io.BytesIO(base64.b64decode(answer["pdf_base64"])))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_issue_both_kinds_and_verify(certs, paid):
    payer = paid["payer"]
    tax = certs.issue_certificate(payer["payer_id"], "FE_PENSION", "tax", "2024-03-01", "2024-03-31")
    text = pdf_text(tax)
    assert tax["record_count"] == 3 and tax["total"] == "1050.50"
    for expected in [payer["name"], payer["id_number"], "2024-01-01至2024-01-31", "2024-03-01至2024-03-31",
                     "350.00", "350.50", "1050.50", "壹仟零伍拾元伍角", tax["code"], "国家税务总局牡丹江市税务局"]:
        assert expected in text, expected
    verified = certs.verify(tax["code"].lower().replace("-", ""))
    assert verified["valid"] is True and verified["kind"] == "tax" and verified["total"] == "1050.50"
    assert verified["payer_name_masked"] == "赵*" and verified["record_count"] == 3
    assert payer["id_number"] not in str(verified)

    pick = certs.certificate_records(payer["payer_id"], "FE_PENSION", "2024-03-01", "2024-03-31")["records"][1]
    payment = certs.issue_certificate(payer["payer_id"], "FE_PENSION", "payment", "2024-03-01", "2024-03-31",
                                      [pick["record_id"]])
    text = pdf_text(payment)
    assert payment["record_count"] == 1 and payment["total"] == "350.00"
    assert "社会保险费缴费证明" in text and payer["id_number"] not in text
    assert payer["id_number"][:4] + "*" * 10 + payer["id_number"][-4:] in text
    assert "2024-02" in text and "2024-01-01至" not in text
    assert certs.verify(payment["code"])["kind"] == "payment"
    assert payment["code"] != tax["code"]


def test_refusals_issue_nothing(certs, certs_db, paid):
    payer, other = paid["payer"]["payer_id"], paid["other"]["payer_id"]
    before = certs_db.certificates.count_documents({})
    theirs = certs.certificate_records(other, "FE_PENSION", "2024-03-01", "2024-03-31")["records"][0]["record_id"]
    mine = certs.certificate_records(payer, "FE_PENSION", "2024-03-01", "2024-03-31")["records"][0]["record_id"]
    with pytest.raises(AppError) as refused:
        certs.issue_certificate(payer, "FE_PENSION", "tax", "2024-03-01", "2024-03-31", [mine, theirs])
    assert code_of(refused) == "NOT_FOUND"
    with pytest.raises(AppError) as refused:  # own record, but outside the chosen payment dates
        certs.issue_certificate(payer, "FE_PENSION", "tax", "2024-03-10", "2024-03-31", [mine])
    assert code_of(refused) == "NOT_FOUND"
    with pytest.raises(AppError) as refused:  # own FE_PENSION record under an FE_MEDICAL session
        certs.issue_certificate(payer, "FE_MEDICAL", "tax", "2024-03-01", "2024-03-31", [mine])
    assert code_of(refused) == "NOT_FOUND"
    with pytest.raises(AppError) as refused:
        certs.issue_certificate(payer, "FE_PENSION", "payment", "2023-01-01", "2023-12-31")
    assert code_of(refused) == "NO_RECORDS" and refused.value.message == "未查询到缴费记录"
    with pytest.raises(AppError) as refused:
        certs.issue_certificate(payer, "FE_PENSION", "payment", "2024-03-01", "2024-03-31", [])
    assert code_of(refused) == "NO_RECORDS"
    with pytest.raises(AppError) as refused:
        certs.issue_certificate(payer, "FE_PENSION", "receipt", "2024-03-01", "2024-03-31")
    assert code_of(refused) == "VALIDATION_ERROR"
    assert certs_db.certificates.count_documents({}) == before
    for code in ("AAAA-BBBB-CCCC-DDDD-EEEE", "nonsense", ""):
        with pytest.raises(AppError) as refused:
            certs.verify(code)
        assert code_of(refused) == "NOT_FOUND"


def test_malformed_event_is_dead_lettered_not_lost(publish, certs_db, certs_config, paid):
    from servicekit.reliable import read_dead_letters

    broken = {**order_paid(paid["payer"], ["2024-04"], datetime(2024, 4, 5, tzinfo=SHANGHAI)), "amount_fen": 1}
    publish(broken)
    letters = [letter for letter in read_dead_letters(certs_config["AMQP_URI"], "certs")
               if letter["payload"]["event_id"] == broken["event_id"]]
    assert len(letters) == 1 and letters[0]["event_type"] == "order.paid" and letters[0]["reason"] == "rejected"
    assert "records" in letters[0]["error"] and letters[0]["handler"] == "on_order_paid"
    assert certs_db.records.count_documents({"order_id": broken["order_id"]}) == 0
