"""A payer registered and logged in through the public API, as a front-end does it (for fuzz and security tests)."""
from dataclasses import dataclass

from tests.support.http import Api
from tests.support.people import new_id_number, new_phone

# Passwords the shared helpers use; the end-of-session log check (tests/security) looks for them.
USED_PASSWORDS = set()


@dataclass
class Payer:
    api: Api            # carries the session token
    payer_id: str
    id_number: str
    name: str
    phone: str
    password: str
    insurance_type: str

    @property
    def token(self):
        return self.api.token


def register_and_login(api, sims, name, insurance_type="FE_PENSION", region_code="230102", password="Pw9secret77",
                       id_number=None, enroll=True):
    """Enrol with the bureau simulator (unless told not to), register with an SMS code, log in with another."""
    id_number = id_number or new_id_number(region=region_code)
    phone = new_phone()
    USED_PASSWORDS.add(password)
    if enroll:
        sims.enroll(id_number, name, insurance_type, region_code=region_code, enrolled_on="2020-01-01")
    sent = api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "register"})
    assert sent.status_code == 202, sent.text
    created = api.post("/api/v1/payers", {"id_number": id_number, "name": name, "phone": phone,
                                          "password": password, "sms_code": sims.latest_sms_code(phone)})
    assert created.status_code == 201, created.text
    sent = api.post("/api/v1/sms-codes", {"phone": phone, "purpose": "login"})
    assert sent.status_code == 202, sent.text
    login = api.post("/api/v1/sessions", {"id_number": id_number, "name": name, "password": password,
                                          "insurance_type": insurance_type,
                                          "sms_code": sims.latest_sms_code(phone)})
    assert login.status_code == 201, login.text
    return Payer(Api(api.base_url, login.json()["token"]), created.json()["payer_id"], id_number, name, phone,
                 password, insurance_type)
