"""Helpers for talking to a running stack over HTTP, as a front-end would."""
import requests


class Api:
    """A thin client for the gateway: JSON in and out, optional bearer token."""

    def __init__(self, base_url, token=None):
        self.base_url, self.token = base_url, token
        self.http = requests.Session()

    def request(self, method, path, json=None, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        bearer = token or self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return self.http.request(method, f"{self.base_url}{path}", json=json, headers=headers, timeout=30,
                                 **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path, json=None, **kwargs):
        return self.request("PUT", path, json=json, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


def error_code(response):
    """The API.md envelope's code; fails loudly if the body is not the envelope."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "details"} <= set(body["error"]), body
    return body["error"]["code"]


# Every SMS code a test read this session: the end-of-session log check (tests/security) looks for them.
SEEN_SMS_CODES = set()


class Simulators:
    def __init__(self, base_url):
        self.base_url = base_url
        self.http = requests.Session()

    def enroll(self, id_number, name, insurance_type, region_code="230102", sync=True, **extra):
        bureau = "medical" if insurance_type == "RR_MEDICAL" else "hr"
        answer = self.http.post(f"{self.base_url}/sim/bureaus/{bureau}/enrollments", timeout=10,
                                json={"id_number": id_number, "name": name, "insurance_type": insurance_type,
                                      "region_code": region_code, **extra})
        answer.raise_for_status()
        if bureau == "hr" and sync:
            # The tax registry is the HR enrolments the plans service has synced: sync now (a simulator without
            # a project to call answers 503, e.g. when a test drives the plans service itself).
            synced = self.http.post(f"{self.base_url}/sim/bureaus/sync", timeout=130)
            if synced.status_code != 503:
                synced.raise_for_status()
        return answer.json()

    def latest_sms_code(self, phone):
        answer = self.http.get(f"{self.base_url}/sim/sms/{phone}/latest", timeout=10)
        answer.raise_for_status()
        SEEN_SMS_CODES.add(answer.json()["code"])
        return answer.json()["code"]

    def set_clock(self, now):
        self.http.put(f"{self.base_url}/sim/clock", json={"now": now.isoformat()}, timeout=10).raise_for_status()

    def reset_clock(self):
        self.http.delete(f"{self.base_url}/sim/clock", timeout=10).raise_for_status()


# ---- bureau plans (plans service) ------------------------------------------------------------------
def _bureau(insurance_type):
    return "medical" if insurance_type == "RR_MEDICAL" else "hr"


def add_bureau_plan(sims, plan_id, id_number, insurance_type, period, amount, **extra):
    """The bureau issues (or revises, same plan_id) a 缴费计划; it reaches the project with the next sync."""
    answer = sims.http.post(f"{sims.base_url}/sim/bureaus/{_bureau(insurance_type)}/plans", timeout=10,
                            json={"plan_id": plan_id, "id_number": id_number, "insurance_type": insurance_type,
                                  "period": period, "amount": amount, **extra})
    answer.raise_for_status()
    return answer.json()


def withdraw_bureau_plan(sims, bureau, plan_id):
    sims.http.delete(f"{sims.base_url}/sim/bureaus/{bureau}/plans/{plan_id}", timeout=10).raise_for_status()


def sync_bureaus(sims):
    """POST /sim/bureaus/sync: returns once the plans service has applied both bureaus' feeds."""
    answer = sims.http.post(f"{sims.base_url}/sim/bureaus/sync", timeout=130)
    answer.raise_for_status()
    assert answer.json()["synced"], answer.text
    return answer.json()
