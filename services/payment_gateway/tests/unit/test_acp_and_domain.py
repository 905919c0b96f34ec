"""ACP signatures with the committed dev key pair, and the reading of channel answers."""
import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from payment_gateway import acp, domain
from payment_gateway.adapters import DEV_PUBLIC_KEY
from simulators.unionpay import DEV_PRIVATE_KEY, acp_sign

FIELDS = {"orderId": "abc", "txnAmt": "70000", "respCode": "00", "queryId": "2026030510000012345",
          "txnTime": "20260305100000", "settleDate": "0305", "merId": "898230100000001"}


@pytest.fixture(scope="module")
def keys():
    return acp.load_private_key(DEV_PRIVATE_KEY.read_bytes()), acp.load_public_key(DEV_PUBLIC_KEY.read_bytes())


def test_signing_string_is_sorted_and_skips_the_signature():
    assert acp.signing_string({"b": "2", "a": "1", "signature": "x"}) == "a=1&b=2"


def test_sign_verify_round_trip_with_the_dev_key_pair(keys):
    private, public = keys
    signed = acp.sign(FIELDS, private)
    assert acp.verify(signed, public)
    # the simulator's own implementation of the channel side agrees with ours
    assert acp.verify(acp_sign(FIELDS, private), public)
    assert acp_sign(FIELDS, private)["signature"] == signed["signature"]  # PKCS#1 v1.5 is deterministic


@pytest.mark.parametrize("tamper", [
    lambda f: {**f, "txnAmt": "1"},
    lambda f: {**f, "extra": "field"},
    lambda f: {k: v for k, v in f.items() if k != "respCode"},
    lambda f: {**f, "signature": "not base64!!"},
    lambda f: {**f, "signature": base64.b64encode(b"x" * 256).decode()},
    lambda f: {k: v for k, v in f.items() if k != "signature"},
    lambda f: {**f, "txnAmt": 70000},
    lambda f: [],
])
def test_anything_altered_or_malformed_fails(keys, tamper):
    private, public = keys
    assert not acp.verify(tamper(acp.sign(FIELDS, private)), public)


def test_another_key_cannot_sign_for_the_channel(keys):
    _, public = keys
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not acp.verify(acp.sign(FIELDS, forger), public)


def test_reading_a_notification():
    result = domain.result_from_fields(FIELDS)
    assert (result.outcome, result.amount_fen, result.channel_txn_id, result.settle_date) == \
        ("success", 70000, "2026030510000012345", "2026-03-05")
    assert domain.result_from_fields({**FIELDS, "respCode": "01"}).outcome == "failed"
    assert domain.result_from_fields({**FIELDS, "respCode": "05"}).outcome == "processing"
    with pytest.raises(ValueError):
        domain.result_from_fields({**FIELDS, "txnAmt": "7.00"})
    with pytest.raises(ValueError):
        domain.result_from_fields({k: v for k, v in FIELDS.items() if k != "queryId"})


def test_settle_date_across_new_year():
    txn = domain.parse_txn_time("20261231233000")
    assert domain.settle_date_of("0101", txn) == "2027-01-01"
    assert domain.settle_date_of("1231", txn) == "2026-12-31"


def test_query_schedule_and_channels():
    from datetime import datetime, timezone
    start = datetime(2026, 3, 5, tzinfo=timezone.utc)
    backoff = domain.parse_backoff("1,2,4,8,16,32")
    assert backoff == (1, 2, 4, 8, 16, 32)
    assert domain.next_query(start, 0, backoff).second == 1
    assert domain.next_query(start, 5, backoff).second == 32
    assert domain.next_query(start, 6, backoff) is None
    with pytest.raises(ValueError):
        domain.parse_backoff("1,0")
    catalog = {"unionpay": {"name": "云闪付"}, "icbc": {"name": "工商银行"}}
    availability = {"default": ["unionpay"], "2310/FE_PENSION": ["icbc", "unionpay"]}
    assert [c["code"] for c in domain.channels_for(catalog, availability, "231002", "FE_PENSION")] == ["icbc", "unionpay"]
    assert [c["code"] for c in domain.channels_for(catalog, availability, "230102", "FE_PENSION")] == ["unionpay"]


def test_date_ranges():
    start, end = domain.parse_date_range("2026-03-01", "2026-03-01")
    assert (end - start).days == 1
    for bad in (("2026-03-02", "2026-03-01"), ("2026-13-01", "2026-03-01"), ("20260301", "2026-03-01"),
                ("2020-01-01", "2026-03-01")):
        with pytest.raises(domain.RuleViolation) as caught:
            domain.parse_date_range(*bad)
        assert caught.value.code == "VALIDATION_ERROR"
