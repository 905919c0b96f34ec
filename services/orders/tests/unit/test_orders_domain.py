"""The sequential rule, the collection window and the order state machine."""
from datetime import datetime, time

import pytest

from servicekit.clock import SHANGHAI

from orders import domain
from orders.domain import RuleViolation, Window


def plans(*periods, locked=()):
    return [{"plan_id": f"p{p}", "period": p, "amount_fen": 35000, "status": "locked" if p in locked else "unpaid",
             "order_id": "other" if p in locked else None} for p in periods]


PAYABLE = plans("2026-01", "2026-02", "2026-03")


def violation(payable, requested):
    with pytest.raises(RuleViolation) as caught:
        domain.select_plans(payable, requested)
    return caught.value.code


# ---- sequential rule --------------------------------------------------------------------------------
def test_default_selection_is_all_payable_oldest_first():
    shuffled = [PAYABLE[2], PAYABLE[0], PAYABLE[1]]
    assert [p["plan_id"] for p in domain.select_plans(shuffled)] == ["p2026-01", "p2026-02", "p2026-03"]


def test_first_k_plans_are_allowed_in_any_listing_order():
    assert [p["plan_id"] for p in domain.select_plans(PAYABLE, ["p2026-01"])] == ["p2026-01"]
    assert [p["plan_id"] for p in domain.select_plans(PAYABLE, ["p2026-02", "p2026-01"])] == ["p2026-01", "p2026-02"]


@pytest.mark.parametrize("requested", [["p2026-02"], ["p2026-01", "p2026-03"], ["p2026-03", "p2026-02"],
                                       ["p2026-02", "p2026-03"]])
def test_gaps_and_skipping_the_oldest_are_refused(requested):
    assert violation(PAYABLE, requested) == "PLAN_SEQUENCE_VIOLATION"


def test_unknown_ids_are_refused_with_the_ids():
    with pytest.raises(RuleViolation) as caught:
        domain.select_plans(PAYABLE, ["p2026-01", "nope"])
    assert caught.value.code == "PLAN_SEQUENCE_VIOLATION"
    assert caught.value.details["unknown_plan_ids"] == ["nope"]


def test_duplicates_are_a_validation_error():
    assert violation(PAYABLE, ["p2026-01", "p2026-01"]) == "VALIDATION_ERROR"


def test_nothing_payable_or_empty_selection():
    assert violation([], None) == "NO_PAYABLE_PLAN"
    assert violation([], ["p2026-01"]) == "NO_PAYABLE_PLAN"
    assert violation(PAYABLE, []) == "NO_PAYABLE_PLAN"


def test_a_plan_locked_to_another_order_is_plan_locked():
    payable = plans("2026-01", "2026-02", locked=("2026-01",))
    assert violation(payable, None) == "PLAN_LOCKED"
    # locked to this very order (a retried create) is fine
    payable[0]["order_id"] = "mine"
    assert len(domain.select_plans(payable, None, order_id="mine")) == 2


# ---- collection window ------------------------------------------------------------------------------
def at(y, m, d, hh=0, mm=0, ss=0):
    return datetime(y, m, d, hh, mm, ss, tzinfo=SHANGHAI)


def test_window_closes_at_17_on_the_25th_exclusive():
    window = Window()
    assert window.is_open(at(2026, 3, 25, 16, 59, 59))
    assert not window.is_open(at(2026, 3, 25, 17, 0, 0))
    assert not window.is_open(at(2026, 3, 31, 23, 59, 59))
    assert window.is_open(at(2026, 4, 1, 0, 0, 0))
    assert window.is_open(at(2026, 3, 1))


def test_window_is_judged_in_shanghai_time_whatever_the_input_zone():
    from datetime import timezone
    utc_0859 = datetime(2026, 3, 25, 8, 59, 59, tzinfo=timezone.utc)  # 16:59:59 in Shanghai
    assert Window().is_open(utc_0859)
    assert not Window().is_open(datetime(2026, 3, 25, 9, 0, 0, tzinfo=timezone.utc))


def test_december_closes_and_january_reopens():
    assert not Window().is_open(at(2026, 12, 31, 23, 59, 59))
    assert Window().is_open(at(2027, 1, 1))
    assert Window().next_cutoff(at(2026, 12, 26)) == at(2027, 1, 25, 17)


def test_close_day_past_month_end_means_the_last_day_leap_years_included():
    window = Window(close_day=30, close_time=time(17, 0))
    assert window.closes_at(2024, 2) == at(2024, 2, 29, 17)  # leap year
    assert window.closes_at(2026, 2) == at(2026, 2, 28, 17)
    assert window.is_open(at(2024, 2, 28, 23, 0))
    assert not window.is_open(at(2024, 2, 29, 17, 0))
    assert window.is_open(at(2026, 2, 28, 16, 59, 59))
    assert not window.is_open(at(2026, 2, 28, 17, 0))
    assert Window(close_day=31).closes_at(2026, 4) == at(2026, 4, 30, 17)


def test_window_configuration_per_region_and_type():
    windows = {"default": {"close_day": 25, "close_time": "17:00"}, "RR_MEDICAL": {"close_day": 20},
               "2310/FE_PENSION": {"close_day": 28, "close_time": "12:30"}}
    assert domain.window_for(windows, "231002", "FE_PENSION") == Window(28, time(12, 30))
    assert domain.window_for(windows, "230102", "FE_PENSION") == Window(25, time(17))
    assert domain.window_for(windows, "231002", "RR_MEDICAL") == Window(20, time(17))
    assert domain.window_for({}, None, "FE_PENSION") == Window()


def test_check_window_raises_payment_window_closed():
    with pytest.raises(RuleViolation) as caught:
        domain.check_window(Window(), at(2026, 3, 25, 17))
    assert caught.value.code == "PAYMENT_WINDOW_CLOSED"
    domain.check_window(Window(), at(2026, 3, 25, 16, 59, 59))


# ---- state machine ----------------------------------------------------------------------------------
def test_transitions():
    assert domain.can_move("pending", "paying") and domain.can_move("pending", "expired")
    assert domain.can_move("paying", "paid") and domain.can_move("paying", "failed")
    assert domain.can_move("paying", "unknown") and domain.can_move("unknown", "paid")
    assert not domain.can_move("paying", "expired")  # a payment in flight never expires
    assert not domain.can_move("unknown", "expired")
    assert not domain.can_move("pending", "paid")
    for final in ("paid", "failed", "expired"):
        assert not any(domain.can_move(final, t) for t in domain.STATUSES)
    assert domain.sources_for("paid") == ["paying", "unknown"]
    assert domain.sources_for("expired") == ["pending"]


def test_paid_message_and_ticket_number():
    assert domain.paid_message("700.00") == "您已经付款700.00元"
    ticket = domain.tax_ticket_no(at(2026, 3, 5, 10), 42)
    assert ticket == "32326030500000000042" and len(ticket) == 20
