"""Hand-made malformed requests a generator from the schema never sends (broken JSON, wrong content types,
bytes that are not UTF-8, oversized bodies, odd paths and queries): each is a 4xx in the envelope, never a 5xx."""
import pytest

from tests.fuzz.test_openapi_fuzz import assert_contract

BODY_OPERATIONS = [("POST", "/api/v1/sms-codes"), ("POST", "/api/v1/payers"), ("POST", "/api/v1/sessions"),
                   ("PUT", "/api/v1/me/phone"), ("POST", "/api/v1/orders"), ("POST", "/api/v1/orders/X1/payments"),
                   ("POST", "/api/v1/me/certificates"), ("POST", "/api/v1/me/declarations")]
BAD_BODIES = {
    "broken json": (b'{"phone": "1380013', "application/json"),
    "json array": (b'[1, 2, 3]', "application/json"),
    "json string": (b'"text"', "application/json"),
    "json null": (b"null", "application/json"),
    "nested nulls": (b'{"phone": null, "plan_ids": [null], "periods": {"a": 1}, "grade": 1e999}', "application/json"),
    "huge number": (b'{"grade": 1' + b"0" * 5000 + b"}", "application/json"),
    "deep nesting": (b"[" * 5000 + b"]" * 5000, "application/json"),
    "not utf-8": (b'{"name": "\xff\xfe\xfa"}', "application/json"),
    "utf-16": ('{"phone": "13800138000"}'.encode("utf-16"), "application/json"),
    "lone surrogate": (b'{"name": "\\ud800", "phone": "\\udfff"}', "application/json"),
    "nul bytes": (b'{"name": "a\\u0000b"}', "application/json"),
    "form encoded": (b"phone=13800138000&purpose=register", "application/x-www-form-urlencoded"),
    "multipart": (b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--", "multipart/form-data; boundary=x"),
    "xml": (b"<a>1</a>", "application/xml"),
    "too large": (b'{"name": "' + b"a" * (70 * 1024) + b'"}', "application/json"),
}
ODD_REQUESTS = [
    ("GET", "/api/v1/me/records?period_from=%ff&period_to=%fe"),
    ("GET", "/api/v1/me/records?period_from=2024-01&period_from=2024-02&period_to=2024-03"),
    ("GET", "/api/v1/me/records?period_from=0000-01&period_to=9999-12"),
    ("GET", "/api/v1/me/records?period_from=2024-12&period_to=2024-01"),
    ("GET", "/api/v1/me/payments?paid_from=%ff&paid_to=2024-01-01"),
    ("GET", "/api/v1/me/payments?paid_from=2024-02-30&paid_to=2024-13-01"),
    ("GET", "/api/v1/me/payments?paid_from=0001-01-01&paid_to=9999-12-31"),
    ("GET", "/api/v1/me/payments?paid_from=%00&paid_to=%00"),
    ("GET", "/api/v1/me/certificates/records?paid_from=2024-02-30&paid_to=2024-03-01"),
    ("GET", "/api/v1/me/certificates/records?paid_from=0000-00-00&paid_to=9999-99-99"),
    ("GET", "/api/v1/orders/%ff%fe"),
    ("GET", "/api/v1/orders/" + "a" * 5000),
    ("GET", "/api/v1/orders/%00"),
    ("GET", "/api/v1/orders/..%2F..%2Fetc%2Fpasswd"),
    ("GET", "/api/v1/orders/{\"$gt\":\"\"}"),
    ("DELETE", "/api/v1/me/declarations/%ff"),
    ("GET", "/api/v1/certificates/%ff%fe"),
    ("GET", "/api/v1/certificates/" + "Z" * 5000),
    ("GET", "/app/..%2Fservice.py"),
    ("GET", "/app/%ff"),
    ("PATCH", "/api/v1/orders"),
    ("GET", "/api/v1/nothing-here"),
    ("POST", "/api/v1/notify/%ff"),
    ("POST", "/api/v1/notify/" + "u" * 5000),
]


@pytest.fixture(scope="module")
def bearer(fuzz_payer):
    return {"Authorization": f"Bearer {fuzz_payer.token}"}


def send(stack, method, path, headers, data=None):
    import requests

    response = requests.request(method, f"{stack.gateway_url}{path}", data=data, headers=headers, timeout=30)
    return _Adapter(response)


class _Adapter:
    """requests' response seen through the attributes assert_contract reads (schemathesis' Response shape)."""

    def __init__(self, response):
        self.status_code, self.text, self.content, self.request = (response.status_code, response.text,
                                                                    response.content, response.request)
        self.headers = {k.lower(): [v] for k, v in response.headers.items()}


@pytest.mark.parametrize("method, path", BODY_OPERATIONS)
@pytest.mark.parametrize("kind", list(BAD_BODIES))
def test_malformed_bodies_are_client_errors(stack, bearer, method, path, kind):
    data, content_type = BAD_BODIES[kind]
    response = send(stack, method, path, {**bearer, "Content-Type": content_type}, data)
    assert_contract(response)
    assert 400 <= response.status_code < 500, response.text[:300]


@pytest.mark.parametrize("method, path", ODD_REQUESTS, ids=[f"{m} {p[:60]}" for m, p in ODD_REQUESTS])
def test_odd_paths_and_queries_are_answered_in_the_envelope(stack, bearer, method, path):
    response = send(stack, method, path, bearer)
    assert_contract(response)
    assert response.status_code != 200 or "records" in response.text or "payments" in response.text


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 7000,
                                           "Bearer \u00ff\u00fe", "Bearer a.b.c", "bearer  ..", "Bearer %00"])
def test_malformed_tokens_are_unauthenticated(stack, authorization):
    response = send(stack, "GET", "/api/v1/me/plans", {"Authorization": authorization.encode("latin-1")})
    assert_contract(response)
    assert response.status_code == 401, response.text
