import pytest

from servicekit.errors import AppError
from servicekit.money import fen_to_str, str_to_fen
from servicekit.pii import mask_id_number, mask_name, redact_id_numbers


@pytest.mark.parametrize("fen, text", [(0, "0.00"), (1, "0.01"), (35000, "350.00"), (100050, "1000.50")])
def test_money_round_trip(fen, text):
    assert fen_to_str(fen) == text and str_to_fen(text) == fen


@pytest.mark.parametrize("bad", ["350", "350.0", "350.000", "-1.00", "01.00", "1e3", 350.0, None, " 1.00"])
def test_money_refuses_anything_but_two_decimals(bad):
    with pytest.raises(ValueError):
        str_to_fen(bad)


def test_masking():
    assert mask_id_number("34052419800101001X") == "3405**********001X"
    assert mask_name("欧阳娜娜") == "欧***" and mask_name("张三") == "张*"


def test_log_redaction_masks_id_numbers_anywhere():
    line = "register 34052419800101001X failed; other=231002198503120016, phone 13800138000"
    redacted = redact_id_numbers(line)
    assert "34052419800101001X" not in redacted and "231002198503120016" not in redacted
    assert "3405**********001X" in redacted and "13800138000" in redacted


def test_app_error_details_survive_serialisation():
    from nameko.exceptions import deserialize, serialize

    original = AppError("ACCOUNT_LOCKED", details={"retry_after_seconds": 900})
    copy = deserialize(serialize(original))
    assert isinstance(copy, AppError)
    assert (copy.code, copy.details, copy.http_status) == ("ACCOUNT_LOCKED", {"retry_after_seconds": 900}, 423)
    with pytest.raises(ValueError):
        AppError("NO_SUCH_CODE")
