from gateway.openapi import build_spec
from gateway.throttle import FixedWindowLimiter
from servicekit.errors import ERROR_CATALOG


def test_limiter_counts_per_key_and_window():
    now = [0.0]
    limiter = FixedWindowLimiter(limit=3, window_seconds=60, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")
    now[0] = 60.0
    assert limiter.allow("a")


def test_openapi_documents_every_route_with_the_error_envelope():
    import gateway.service  # noqa: F401  (registers every route)

    spec = build_spec()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/sessions" in spec["paths"] and "/api/v1/me/phone" in spec["paths"]
    login = spec["paths"]["/api/v1/sessions"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]
    for code in ("401", "403", "423"):
        assert login["responses"][code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"}
    statuses = {status for _, (status, _) in ERROR_CATALOG.items()}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert any(code.startswith("2") for code in operation["responses"]), (method, path)
            assert set(int(c) for c in operation["responses"] if not c.startswith("2")) <= statuses
