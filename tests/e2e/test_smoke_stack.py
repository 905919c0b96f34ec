def test_stack_is_ready_and_serves_openapi(stack):
    import requests

    ready = requests.get(f"{stack.gateway_url}/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) >= {"broker", "identity", "plans", "orders", "payment_gateway", "certs"}
    spec = requests.get(f"{stack.gateway_url}/openapi.json", timeout=10).json()
    assert "/api/v1/payers" in spec["paths"]
