"""Helpers for fault and scale tests: many payers at once, and what each process says it handled."""
import eventlet
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.http import Api, add_bureau_plan, sync_bureaus
from tests.support.payflow import PASSWORD
from tests.support.people import new_id_number, new_phone


def make_payers(stack, sims, count, amount="100.00", period="2026-01"):
    """`count` payers with one plan each, enrolled and synced in one go, registered and logged in in parallel."""
    people = [(new_id_number(), "并发" + "甲乙丙丁戊己庚辛壬癸"[index % 10] + "子丑寅卯辰巳午未申酉戌亥"[index // 10 % 12], new_phone())
              for index in range(count)]
    for id_number, name, _ in people:
        sims.enroll(id_number, name, "FE_PENSION", sync=False, enrolled_on="2020-01-01")
        add_bureau_plan(sims, f"F-{id_number}-{period}", id_number, "FE_PENSION", period, amount)
    sync_bureaus(sims)

    def log_in(person):
        id_number, name, phone = person
        api = Api(stack.gateway_url)
        assert api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "register"}).status_code == 202
        created = api.post("/api/v1/payers", {"id_number": id_number, "name": name, "phone": phone,
                                              "password": PASSWORD, "sms_code": sims.latest_sms_code(phone)})
        assert created.status_code == 201, created.text
        assert api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "login"}).status_code == 202
        login = api.post("/api/v1/sessions", {"id_number": id_number, "name": name, "password": PASSWORD,
                                              "insurance_type": "FE_PENSION",
                                              "sms_code": sims.latest_sms_code(phone)})
        assert login.status_code == 201, login.text
        return Api(stack.gateway_url, login.json()["token"])

    return list(eventlet.GreenPool(8).imap(log_in, people))


def handled_messages(stack, label, service):
    """RPC calls and events one process handled, from its own /metrics (timers excluded: every instance runs them)."""
    text = requests.get(f"http://127.0.0.1:{stack.ops_ports[label]}/metrics", timeout=10).text
    total = 0
    for family in text_string_to_metric_families(text):
        if family.name == "sitax_entrypoint_seconds":
            total += sum(s.value for s in family.samples if s.name.endswith("_count")
                         and s.labels["service"] == service
                         and s.labels["kind"] in ("Rpc", "EventHandler", "ReliableEventHandler"))
    return int(total)
