"""The authorisation matrix: every endpoint under /api/v1/me, /api/v1/orders and the certificates, called by a
second payer with the first payer's ids, answers NOT_FOUND (or shows only the caller's own data) and changes
nothing the first payer would notice; without a valid token every payer endpoint is 401; ops endpoints refuse
payer tokens. The endpoint list is read from the served /openapi.json, so a new endpoint without a row here fails.
"""
import json

import pytest
import requests

from tests.support.http import Api, error_code

SCOPED = ("/api/v1/me", "/api/v1/orders", "/api/v1/certificates")


def served_operations(stack):
    document = requests.get(f"{stack.gateway_url}/openapi.json", timeout=10).json()
    return {(method.upper(), path): op for path, ops in document["paths"].items() for method, op in ops.items()}


def victim_state(v):
    """What the first payer (or ops) would notice: orders, payments, records, plans, declarations, phone."""
    me, day = v["me"], v["day"]
    answers = {
        "paid_order": me.get(f"/api/v1/orders/{v['paid_order']}"),
        "pending_order": me.get(f"/api/v1/orders/{v['pending_order']}"),
        "payments": me.get(f"/api/v1/me/payments?paid_from={day}&paid_to={day}"),
        "records": me.get(f"/api/v1/me/records?period_from={v['periods'][0]}&period_to={v['periods'][-1]}"),
        "certificate_records": me.get(f"/api/v1/me/certificates/records?paid_from={day}&paid_to={day}"),
        "plans": me.get("/api/v1/me/plans"),
        "declaration_options": me.get("/api/v1/me/declaration-options"),
        "declarations": me.get("/api/v1/me/declarations"),
        "related_payers": me.get("/api/v1/me/related-payers"),
        "certificate": Api(me.base_url).get(f"/api/v1/certificates/{v['certificate_code']}"),
    }
    state = {}
    for name, answer in answers.items():
        assert answer.status_code == 200, (name, answer.text)
        state[name] = answer.json()
    return state


def victim_secrets(v):
    payer = v["payer"]
    return [payer.id_number, payer.name, payer.phone, payer.payer_id, v["paid_order"], v["paid_payment"],
            v["pending_order"], v["paid_declaration"], v["open_declaration"], v["voidable_declaration"],
            *v["record_ids"], *v["voidable_plan_ids"]]


NOT_FOUND, OWN = "not_found", "own_only"
# (method, path) -> [(case name, expectation, request builder v -> (path, json body or None))]
MATRIX = {
    ("GET", "/api/v1/orders/{order_id}"): [
        ("paid order", NOT_FOUND, lambda v: (f"/api/v1/orders/{v['paid_order']}", None)),
        ("pending order", NOT_FOUND, lambda v: (f"/api/v1/orders/{v['pending_order']}", None))],
    ("POST", "/api/v1/orders/{order_id}/payments"): [
        ("pay their pending order", NOT_FOUND,
         lambda v: (f"/api/v1/orders/{v['pending_order']}/payments", {"channel": "unionpay"})),
        ("pay their paid order", NOT_FOUND,
         lambda v: (f"/api/v1/orders/{v['paid_order']}/payments", {"channel": "unionpay"}))],
    ("POST", "/api/v1/orders"): [
        ("order their plans", OWN, lambda v: ("/api/v1/orders", {"plan_ids": v["voidable_plan_ids"]}))],
    ("DELETE", "/api/v1/me/declarations/{declaration_id}"): [
        ("void their voidable declaration", NOT_FOUND,
         lambda v: (f"/api/v1/me/declarations/{v['voidable_declaration']}", None)),
        ("void their paid declaration", NOT_FOUND,
         lambda v: (f"/api/v1/me/declarations/{v['paid_declaration']}", None)),
        ("void their ordered declaration", NOT_FOUND,
         lambda v: (f"/api/v1/me/declarations/{v['open_declaration']}", None))],
    ("POST", "/api/v1/me/certificates"): [
        ("certify their records", NOT_FOUND,
         lambda v: ("/api/v1/me/certificates", {"kind": "tax", "paid_from": v["day"], "paid_to": v["day"],
                                                "record_ids": v["record_ids"]})),
        ("certify the range they paid in", OWN,
         lambda v: ("/api/v1/me/certificates", {"kind": "tax", "paid_from": v["day"], "paid_to": v["day"]}))],
    ("GET", "/api/v1/me/records"): [
        ("records", OWN, lambda v: (f"/api/v1/me/records?period_from={v['periods'][0]}"
                                    f"&period_to={v['periods'][-1]}&payer_id={v['payer'].payer_id}", None))],
    ("GET", "/api/v1/me/certificates/records"): [
        ("certificate records", OWN,
         lambda v: (f"/api/v1/me/certificates/records?paid_from={v['day']}&paid_to={v['day']}"
                    f"&payer_id={v['payer'].payer_id}", None))],
    ("GET", "/api/v1/me/payments"): [
        ("payments", OWN, lambda v: (f"/api/v1/me/payments?paid_from={v['day']}&paid_to={v['day']}", None))],
    ("GET", "/api/v1/me/plans"): [("plans", OWN, lambda v: ("/api/v1/me/plans", None))],
    ("GET", "/api/v1/me/enrollment"): [("enrolment", OWN, lambda v: ("/api/v1/me/enrollment", None))],
    ("GET", "/api/v1/me/related-payers"): [("related payers", OWN, lambda v: ("/api/v1/me/related-payers", None))],
    ("GET", "/api/v1/me/declaration-options"): [
        ("declaration options", OWN, lambda v: ("/api/v1/me/declaration-options", None))],
    ("GET", "/api/v1/me/declarations"): [
        ("list declarations", OWN, lambda v: ("/api/v1/me/declarations", None))],
    ("POST", "/api/v1/me/declarations"): [
        ("declare their next period", OWN, lambda v: ("/api/v1/me/declarations", {"periods": v["periods"][-1:],
                                                                                   "grade": 1}))],
    ("PUT", "/api/v1/me/phone"): [
        ("take their phone", OWN, lambda v: ("/api/v1/me/phone", {"new_phone": v["payer"].phone,
                                                                  "old_phone_code": "000000",
                                                                  "new_phone_code": "000000"}))],
    ("GET", "/api/v1/certificates/{code}"): [
        ("verify their certificate (public: masked only)", "public",
         lambda v: (f"/api/v1/certificates/{v['certificate_code']}", None))],
}
CASES = [pytest.param(key, name, expectation, build, id=f"{key[0]} {key[1]}: {name}")
         for key, rows in MATRIX.items() for name, expectation, build in rows]


def test_every_scoped_endpoint_has_a_row_in_the_matrix(stack):
    scoped = {key for key in served_operations(stack) if key[1].startswith(SCOPED)}
    assert scoped - set(MATRIX) == set(), "endpoints without an authorisation row"
    assert set(MATRIX) - scoped == set(), "rows for endpoints that no longer exist"


@pytest.mark.parametrize("key, name, expectation, build", CASES)
def test_second_payer_with_first_payers_ids(stack, victim, attacker, key, name, expectation, build):
    before = victim_state(victim)
    assert before["records"]["records"] and before["payments"]["payments"] and before["plans"]["plans"]
    path, body = build(victim)
    answer = attacker.api.request(key[0], path, json=body)
    if expectation == NOT_FOUND:
        assert answer.status_code == 404 and error_code(answer) == "NOT_FOUND", answer.text
    elif expectation == OWN:
        assert answer.status_code < 500, answer.text
        text = answer.text if answer.headers.get("Content-Type", "").startswith("application/json") else ""
        sent = path + json.dumps(body)  # echoing what the caller sent back to them reveals nothing
        leaked = [s for s in victim_secrets(victim) if s in text and s not in sent]
        assert not leaked, f"{name}: the first payer's {leaked} shown to the second: {answer.text[:500]}"
        if answer.status_code >= 400:
            error_code(answer)
    else:  # public verification: what a verifier needs, never the ID number, phone or full name
        assert answer.status_code == 200, answer.text
        for secret in (victim["payer"].id_number, victim["payer"].phone, victim["payer"].name):
            assert secret not in answer.text
    assert victim_state(victim) == before, f"{name} changed the first payer's state"


def test_payer_endpoints_refuse_missing_forged_and_revoked_tokens(stack, sec_sims):
    from tests.support.payers import register_and_login

    revoked = register_and_login(Api(stack.gateway_url), sec_sims, "褚退出")
    assert revoked.api.delete("/api/v1/sessions/current").status_code == 204
    tampered = revoked.token[:-4] + ("AAAA" if not revoked.token.endswith("AAAA") else "BBBB")
    payer_ops = [key for key, op in served_operations(stack).items()
                 if any("payerToken" in requirement for requirement in op.get("security", ()))]
    assert len(payer_ops) >= 15, payer_ops
    for method, path in payer_ops:
        url = stack.gateway_url + path.replace("{", "").replace("}", "")
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Bearer {revoked.token}"},
                        {"Authorization": f"Bearer {tampered}"}, {"Authorization": f"Basic {revoked.token}"}):
            answer = requests.request(method, url, headers=headers, json={}, timeout=30)
            assert answer.status_code == 401 and error_code(answer) == "UNAUTHENTICATED", \
                (method, path, headers.get("Authorization", "")[:12], answer.status_code, answer.text[:200])


def test_ops_endpoints_refuse_payer_tokens(stack, attacker):
    ops = [key for key, op in served_operations(stack).items()
           if any("opsToken" in requirement for requirement in op.get("security", ()))]
    ops += [("POST", "/api/v1/ops/reconciliations"), ("GET", "/api/v1/ops/reconciliations/R1")]
    for method, path in ops:
        url = stack.gateway_url + path.replace("{", "").replace("}", "")
        answer = requests.request(method, url, json={"channel": "unionpay", "date": "2026-03-11"}, timeout=30,
                                  headers={"Authorization": f"Bearer {attacker.token}"})
        assert answer.status_code in (401, 403, 404, 405), (method, path, answer.status_code, answer.text[:200])
        assert error_code(answer) in ("UNAUTHENTICATED", "NOT_FOUND"), answer.text
