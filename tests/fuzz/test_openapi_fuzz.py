"""Schemathesis against the running stack's /openapi.json: whatever a client sends, no 5xx, and every 4xx is the
API.md envelope with a code from the catalogue (and the catalogue's status for that code).

Bounded and deterministic: a fixed number of examples per operation and generation mode (data that fits the
schema, and data that does not), derandomized, so every run sends the same requests. Authenticated operations get
a real payer token (registered and logged in through the API, see conftest.py).

The operations are listed at collection from the gateway's own spec builder, so each one is a test of its own
(and can carry a marker); the test then runs against the document the running gateway serves.
"""
import json

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

import gateway.service  # noqa: F401  (registers every route)
from gateway.openapi import build_spec
from servicekit.errors import ERROR_CATALOG

EXAMPLES_PER_OPERATION = 25
LOGOUT = ("DELETE", "/api/v1/sessions/current")
FUZZ_SETTINGS = settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
                         print_blob=False)


def operations():
    params = []
    for path, methods in build_spec()["paths"].items():
        for method, operation in methods.items():
            modes = [GenerationMode.POSITIVE]
            if operation.get("requestBody") or any(p["in"] == "query" for p in operation.get("parameters", ())):
                modes.append(GenerationMode.NEGATIVE)  # something to get wrong (a path segment is any string)
            for mode in modes:
                params.append(pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode.value}",
                                           marks=KNOWN_FINDINGS.get((method.upper(), path, mode.value), ())))
    return params


# (method, path, mode) -> pytest.mark.xfail(strict=True, reason=...) for findings in code owned by others.
KNOWN_FINDINGS = {}


def assert_contract(response):
    """No server error; a client error is exactly the envelope, with a catalogued code and its status."""
    request = f"{response.request.method} {response.request.url} body={response.request.body!r:.300}"
    assert response.status_code < 500, f"{response.status_code} for {request}: {response.text[:500]}"
    if response.status_code < 400:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), f"{request}: {content_type} {response.text[:300]}"
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error"}, f"{request}: {body}"
    error = body["error"]
    assert isinstance(error, dict) and {"code", "message", "details"} <= set(error), f"{request}: {body}"
    assert error["code"] in ERROR_CATALOG, f"{request}: unknown code {error['code']}"
    assert ERROR_CATALOG[error["code"]][0] == response.status_code, f"{request}: {response.status_code} {body}"
    assert isinstance(error["message"], str) and error["message"], f"{request}: {body}"
    assert isinstance(error["details"], dict), f"{request}: {body}"


def headers_for(method, path, payer):
    if (method, path) == LOGOUT:
        return {}  # logging the fuzzer's own token out would turn every later case into a 401
    return {"Authorization": f"Bearer {payer.token}"}


@pytest.mark.parametrize("method, path, mode", operations())
def test_operation_answers_within_the_contract(api_schema, fuzz_payer, method, path, mode):
    operation = api_schema[path][method]
    headers = headers_for(method, path, fuzz_payer)
    sent = []

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        response = case.call(headers=headers, timeout=30)
        sent.append(response.status_code)
        assert_contract(response)

    fuzz()
    assert sent, "no case generated"
    print(f"{method} {path} {mode.value}: {len(sent)} requests, statuses {sorted(set(sent))}")
