"""Plan rules without I/O: revisions and withdrawals, deadlines, 牡丹江 grade arithmetic and the sequential rule."""
from datetime import datetime, timezone

import pytest

from plans import domain
from servicekit.clock import SHANGHAI

NOW = datetime(2025, 3, 10, 2, 0, tzinfo=timezone.utc)


def change(amount_fen=35000, period="2025-01", **extra):
    return {"plan_id": "P1", "id_number": "34052419800101001X", "insurance_type": "FE_PENSION", "period": period,
            "amount_fen": amount_fen, "deadline": None, "declaration_id": None, "withdrawn": False, **extra}


def stored(status="unpaid", **over):
    plan = domain.decide(None, change(), "hr", NOW).set
    plan.update(status=status, **over)
    return plan


def test_new_plan_is_inserted_unpaid_with_an_event():
    decision = domain.decide(None, change(), "hr", NOW)
    assert decision.action == "insert" and decision.set["status"] == "unpaid"
    assert [e for e, _ in decision.events] == ["plan.synced"]


def test_identical_change_is_a_noop_whatever_the_deadline_offset():
    shanghai = datetime(2025, 1, 25, 17, 0, tzinfo=SHANGHAI)
    plan = domain.decide(None, change(deadline=shanghai), "hr", NOW).set
    assert domain.decide(plan, change(deadline=shanghai.astimezone(timezone.utc)), "hr", NOW).action == "noop"


def test_revision_applies_to_unpaid():
    decision = domain.decide(stored(), change(40000), "hr", NOW)
    assert decision.action == "revise" and decision.set["amount_fen"] == 40000
    assert decision.events[0][1]["applied"] is True


def test_revision_of_paid_plan_is_recorded_but_refused():
    decision = domain.decide(stored("paid"), change(40000), "hr", NOW)
    assert decision.action == "revise_refused" and "amount_fen" not in decision.set
    assert decision.set["refused_revision"]["new_amount_fen"] == 40000
    assert decision.set["bureau_view"]["amount_fen"] == 40000
    assert (decision.events[0][1]["applied"], decision.events[0][1]["reason"]) == (False, "paid")


def test_revision_of_locked_plan_waits_for_the_release():
    locked = stored("locked", order_id="O1")
    decision = domain.decide(locked, change(40000), "hr", NOW)
    assert decision.action == "revise_pending" and "amount_fen" not in decision.set
    locked.update(decision.set)
    assert domain.on_release(locked, NOW)["amount_fen"] == 40000
    assert domain.on_release(locked, NOW)["status"] == "unpaid"


def test_withdrawal_hides_unpaid_only():
    assert domain.decide(stored(), change(withdrawn=True), "hr", NOW).set["status"] == "withdrawn"
    for status in ("locked", "paid"):
        decision = domain.decide(stored(status), change(withdrawn=True), "hr", NOW)
        assert decision.action == "withdraw_pending" and "status" not in decision.set
    locked = stored("locked", order_id="O1")
    locked.update(domain.decide(locked, change(withdrawn=True), "hr", NOW).set)
    assert domain.on_release(locked, NOW)["status"] == "withdrawn"


def test_plan_cannot_move_to_another_payer():
    assert domain.decide(stored(), change(id_number="11010519491231002X"), "hr", NOW).action == "ignore"


def test_withdrawal_of_unknown_plan_is_ignored():
    assert domain.decide(None, change(withdrawn=True), "hr", NOW).action == "ignore"


@pytest.mark.parametrize("now, expected", [
    (datetime(2025, 3, 25, 16, 59, tzinfo=SHANGHAI), datetime(2025, 3, 25, 17, 0, tzinfo=SHANGHAI)),
    (datetime(2025, 3, 25, 17, 0, tzinfo=SHANGHAI), datetime(2025, 4, 25, 17, 0, tzinfo=SHANGHAI)),
    (datetime(2025, 12, 31, 23, 0, tzinfo=SHANGHAI), datetime(2026, 1, 25, 17, 0, tzinfo=SHANGHAI)),
    # 2025-03-25 10:00 UTC is 18:00 in Shanghai: already past the cut-off
    (datetime(2025, 3, 25, 10, 0, tzinfo=timezone.utc), datetime(2025, 4, 25, 17, 0, tzinfo=SHANGHAI)),
])
def test_next_cut_off(now, expected):
    assert domain.CutOff().next_after(now) == expected


def test_bureau_deadline_wins():
    deadline = datetime(2025, 6, 30, 9, 0, tzinfo=timezone.utc)
    assert domain.effective_deadline({"deadline": deadline}, NOW, domain.CutOff()) == deadline


@pytest.mark.parametrize("wage_fen, ratio, expected_fen", [
    (740000, 60, 88800),      # 7400.00 × 0.6 × 0.2 = 888.00
    (731200, 60, 87744),      # 7312.00 × 0.6 × 0.2 = 877.44
    (731233, 60, 87748),      # 7312.33 × 0.6 × 0.2 = 877.4796 -> 877.48
    (731225, 70, 102372),     # 7312.25 × 0.7 × 0.2 = 1023.715 -> 1023.72 (half up, no float error)
    (740000, 300, 444000),
])
def test_monthly_amount_in_fen_rounds_half_up(wage_fen, ratio, expected_fen):
    assert domain.monthly_amount_fen(wage_fen, ratio, 20) == expected_fen


def test_grades_span_60_to_300_percent():
    policy = domain.DeclarationPolicy(avg_wage_fen={2025: 740000})
    grades = policy.grades(2025)
    assert [g["base_ratio_pct"] for g in (grades[0], grades[-1])] == [60, 300]
    assert [g["grade"] for g in grades] == list(range(1, len(grades) + 1))
    with pytest.raises(domain.RuleViolation):
        policy.grades(2030)


def test_mode_follows_the_enrolment_region():
    policy = domain.DeclarationPolicy(avg_wage_fen={})
    assert policy.applies_to({"insurance_type": "FE_PENSION", "region_code": "231083"})
    assert not policy.applies_to({"insurance_type": "FE_MEDICAL", "region_code": "231083"})
    assert not policy.applies_to({"insurance_type": "FE_PENSION", "region_code": "230102"})
    assert not policy.applies_to(None)


def test_sequential_declaration_rule():
    declarable = domain.declarable_periods("2025-01", "2025-06", {"2025-03"})
    assert declarable == ["2025-01", "2025-02", "2025-04", "2025-05", "2025-06"]
    assert domain.check_declaration(["2025-02", "2025-01"], declarable) == ["2025-01", "2025-02"]
    assert domain.check_declaration(["2025-01", "2025-02", "2025-04"], declarable)[-1] == "2025-04"
    with pytest.raises(domain.RuleViolation) as gap:
        domain.check_declaration(["2025-01", "2025-04"], declarable)
    assert gap.value.code == "PLAN_SEQUENCE_VIOLATION"
    with pytest.raises(domain.RuleViolation) as later:
        domain.check_declaration(["2025-02"], declarable)
    assert later.value.code == "PLAN_SEQUENCE_VIOLATION"
    with pytest.raises(domain.RuleViolation) as taken:
        domain.check_declaration(["2025-03"], declarable)
    assert taken.value.code == "CONFLICT"
    with pytest.raises(domain.RuleViolation):
        domain.check_declaration([], declarable)


def test_declaration_window_starts_at_enrolment_in_this_year():
    now = datetime(2025, 5, 1, tzinfo=SHANGHAI)
    assert domain.declaration_window("2020-01-01", now) == ("2025-01", "2025-12")
    assert domain.declaration_window("2025-03-15", now) == ("2025-03", "2025-12")
    assert domain.parse_avg_wages("2025=7312.00, 2026=7600.50") == {2025: 731200, 2026: 760050}
