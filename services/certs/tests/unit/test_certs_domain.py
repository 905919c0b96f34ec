"""Pure certificate rules: 大写 amounts, ranges, record selection, codes, masking, the event schema."""
from datetime import datetime, timezone

import pytest
from marshmallow import ValidationError

from certs import domain
from certs.schemas import OrderPaid

UTC = timezone.utc


# ---- 大写 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fen, words", [
    (0, "零元整"),
    (1, "壹分"),
    (10, "壹角"),
    (11, "壹角壹分"),
    (100, "壹元整"),
    (101, "壹元零壹分"),
    (110, "壹元壹角"),
    (1000, "壹拾元整"),           # 壹拾, as the PBOC examples write it (壹拾万柒仟元…), not 拾元
    (1500, "壹拾伍元整"),
    (10050, "壹佰元伍角"),
    (35000, "叁佰伍拾元整"),
    (100000, "壹仟元整"),
    (100100, "壹仟零壹元整"),
    (1001000, "壹万零壹拾元整"),
    (1001001, "壹万零壹拾元零壹分"),   # 10010.01
    (100000000, "壹佰万元整"),
    (168032, "壹仟陆佰捌拾元叁角贰分"),  # PBOC example ¥1,680.32
    (600714, "陆仟零柒元壹角肆分"),      # PBOC example ¥6,007.14
    # PBOC example ¥107,000.53: the 零 for a zero 万位/元位 is optional; we write none (as for 100.50)
    (10700053, "壹拾万柒仟元伍角叁分"),
    (32504, "叁佰贰拾伍元零肆分"),       # PBOC example ¥325.04
    (140950, "壹仟肆佰零玖元伍角"),      # PBOC example ¥1,409.50
    (1000010000, "壹仟万零壹佰元整"),
    (10000000000, "壹亿元整"),
    (10001000000, "壹亿零壹万元整"),
    (10010000000, "壹亿零壹拾万元整"),
    (10000000100, "壹亿零壹元整"),
    (100000000000000, "壹万亿元整"),
    (999999999999999999, "玖仟玖佰玖拾玖万亿玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
])
def test_amount_in_words(fen, words):
    assert domain.amount_in_words(fen) == words


@pytest.mark.parametrize("bad", [-1, 1.5, "100", True, None, 10 ** 18])
def test_amount_in_words_refuses_non_amounts(bad):
    with pytest.raises(ValueError):
        domain.amount_in_words(bad)


def test_no_double_zero_and_no_trailing_zero():
    for fen in range(0, 2_000_000, 997):
        words = domain.amount_in_words(fen)
        assert "零零" not in words
        assert not words.endswith("零"), (fen, words)
        assert not words.startswith("零") or fen == 0, (fen, words)


# ---- ranges ----------------------------------------------------------------------------------------
def test_period_range_rules():
    assert domain.check_period_range("2024-01", "2024-12") == ("2024-01", "2024-12")
    assert domain.check_period_range("2022-01", "2024-12")  # exactly 36 months
    for args, field in [(("2024-13", "2024-12"), "period_from"), (("2024-01", "24-12"), "period_to"),
                        (("2024-05", "2024-04"), "period_to"), (("2021-12", "2024-12"), "period_to"),
                        ((None, "2024-01"), "period_from")]:
        with pytest.raises(domain.RuleViolation) as refused:
            domain.check_period_range(*args)
        assert refused.value.code == "VALIDATION_ERROR"
        assert field in refused.value.details


def test_paid_window_is_shanghai_days_inclusive():
    start, end = domain.paid_window("2024-03-01", "2024-03-31")
    assert start == datetime(2024, 2, 29, 16, tzinfo=UTC)
    assert end == datetime(2024, 3, 31, 16, tzinfo=UTC)
    assert domain.paid_window("2024-01-01", "2024-12-31")  # 366 days in a leap year
    for args in [("2024-03-02", "2024-03-01"), ("2023-01-01", "2024-01-02"), ("2024-3-1", "2024-03-02"),
                 ("2024-02-30", "2024-03-01"), ("", "2024-03-01")]:
        with pytest.raises(domain.RuleViolation) as refused:
            domain.paid_window(*args)
        assert refused.value.code == "VALIDATION_ERROR"


# ---- record selection ------------------------------------------------------------------------------
def record(rid, period, paid_at=datetime(2024, 3, 5, 2, tzinfo=UTC), amount=35000):
    return {"_id": rid, "period": period, "paid_at": paid_at, "amount_fen": amount, "insurance_type": "FE_PENSION",
            "tax_ticket_no": f"T{rid}", "order_id": "O1", "region_code": None,
            "plan_id": f"P{rid}", "payment_id": "pay1", "channel": "unionpay"}


def test_selection_defaults_to_all_sorted_by_period():
    available = [record("b", "2024-02"), record("a", "2024-01")]
    assert [r["_id"] for r in domain.select_records(available, None)] == ["a", "b"]


def test_selection_takes_exactly_the_requested_ids_once():
    available = [record("a", "2024-01"), record("b", "2024-02"), record("c", "2024-03")]
    assert [r["_id"] for r in domain.select_records(available, ["c", "a", "c"])] == ["a", "c"]


def test_selection_refuses_any_unknown_id_whole():
    available = [record("a", "2024-01")]
    with pytest.raises(domain.RuleViolation) as refused:
        domain.select_records(available, ["a", "someone-elses"])
    assert refused.value.code == "NOT_FOUND"
    assert "someone-elses" in refused.value.details["record_ids"][0]


@pytest.mark.parametrize("available, ids", [([], None), ([record("a", "2024-01")], [])])
def test_nothing_to_certify_is_no_records(available, ids):
    with pytest.raises(domain.RuleViolation) as refused:
        domain.select_records(available, ids)
    assert refused.value.code == "NO_RECORDS"
    assert refused.value.message == "未查询到缴费记录"


def test_records_answer_empty_has_the_seed_message():
    assert domain.records_answer([]) == {"records": [], "count": 0, "total": "0.00", "message": "未查询到缴费记录"}
    answer = domain.records_answer([record("a", "2024-01", amount=35000), record("b", "2023-12", amount=100)])
    assert [r["period"] for r in answer["records"]] == ["2023-12", "2024-01"]
    assert answer["total"] == "351.00" and "message" not in answer
    assert answer["records"][1]["paid_at"] == "2024-03-05T10:00:00+08:00"


def test_record_id_is_stable_per_order_and_plan():
    assert domain.record_id("O1", "P1") == domain.record_id("O1", "P1")
    assert domain.record_id("O1", "P1") != domain.record_id("O1", "P2") != domain.record_id("O2", "P1")


# ---- codes -----------------------------------------------------------------------------------------
def test_verification_codes_are_long_random_and_readable():
    codes = {domain.new_verification_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:50]:
        assert len(code.replace("-", "")) == 20 and code.count("-") == 4
        assert not set(code) & set("01OI")
        assert domain.normalise_code(code.lower().replace("-", " ")) == code
    assert domain.normalise_code("ABCD") is None
    assert domain.normalise_code("0000-0000-0000-0000-0000") is None
    assert domain.normalise_code({"$ne": 1}) is None


# ---- what is printed ---------------------------------------------------------------------------------
SETTINGS = domain.IssuerSettings(public_base_url="https://tax.example/",
                                 authorities=domain.parse_authorities("2310=国家税务总局牡丹江市税务局;23=省局"))
PAYER = {"name": "欧阳娜娜", "id_number": "34052419800101001X"}


def test_payment_certificate_masks_the_id_and_tax_certificate_shows_it():
    records = [record("a", "2024-01"), record("b", "2024-02", amount=10050)]
    issued = datetime(2024, 3, 10, 1, tzinfo=UTC)
    payment = domain.certificate_document("payment", records, PAYER, "CODE", "N1", issued, SETTINGS)
    assert payment["id_number"] == "3405**********001X" and payment["id_label"] == "身份证号码"
    tax = domain.certificate_document("tax", records, PAYER, "CODE", "N1", issued, SETTINGS)
    assert tax["id_number"] == "34052419800101001X" and tax["id_label"] == "纳税人识别号"
    assert tax["total"] == "450.50" and tax["total_words"] == "肆佰伍拾元伍角"
    assert tax["verify_url"] == "https://tax.example/api/v1/certificates/CODE"
    assert tax["issue_date"] == "2024年03月10日"
    assert tax["rows"][0]["period"] == "2024-01-01至2024-01-31"
    hidden = domain.IssuerSettings(public_base_url="x", tax_shows_full_id=False)
    assert domain.certificate_document("tax", records, PAYER, "C", "N", issued, hidden)["id_number"] == \
        "3405**********001X"


def test_authority_by_longest_region_prefix():
    assert SETTINGS.authority_for("231002") == "国家税务总局牡丹江市税务局"
    assert SETTINGS.authority_for("230102") == "省局"
    assert SETTINGS.authority_for(None) == "国家税务总局黑龙江省税务局"


def test_period_label_handles_february():
    assert domain.period_label("2024-02") == "2024-02-01至2024-02-29"
    assert domain.period_label("2023-12") == "2023-12-01至2023-12-31"


def test_verification_view_masks_the_name_and_carries_no_id():
    certificate = {"_id": "C", "certificate_no": "N", "kind": "tax", "payer_name": "欧阳娜娜",
                   "issued_at": datetime(2024, 3, 10, 1, tzinfo=UTC), "insurance_type": "FE_PENSION",
                   "total_fen": 70000, "records": [{"period": "2024-01"}, {"period": "2024-02"}],
                   "id_number": "34052419800101001X"}
    view = domain.verification_view(certificate)
    assert view["payer_name_masked"] == "欧***" and view["total"] == "700.00" and view["record_count"] == 2
    assert "34052419800101001X" not in str(view)


# ---- order.paid, consumer side ------------------------------------------------------------------------
def order_paid(**changes):
    event = {"event_id": "e1", "occurred_at": "2024-03-05T10:00:00+08:00", "schema_version": 1, "order_id": "O1",
             "payer": {"payer_id": "p1", "id_number": "34052419800101001X", "name": "张三", "phone": "x"},
             "insurance_type": "FE_PENSION", "amount_fen": 70000, "paid_at": "2024-03-05T10:00:00+08:00",
             "payment_id": "pay1", "channel": "unionpay", "channel_txn_id": "t1",
             "records": [{"plan_id": "P1", "period": "2024-01", "amount_fen": 35000, "tax_ticket_no": "T1"},
                         {"plan_id": "P2", "period": "2024-02", "amount_fen": 35000, "tax_ticket_no": "T2"}],
             "future_field": {"anything": True}}
    event.update(changes)
    return event


def test_order_paid_schema_ignores_unknown_fields():
    loaded = OrderPaid().load(order_paid())
    assert "future_field" not in loaded and "phone" not in loaded["payer"]
    assert loaded["paid_at"] == datetime(2024, 3, 5, 2, tzinfo=UTC)


@pytest.mark.parametrize("changes", [
    {"amount_fen": 70001}, {"schema_version": 2}, {"paid_at": "2024-03-05T10:00:00"}, {"records": []},
    {"insurance_type": "CAR"}, {"amount_fen": "700.00"},
])
def test_order_paid_schema_refuses_broken_events(changes):
    with pytest.raises(ValidationError):
        OrderPaid().load(order_paid(**changes))
