import pytest
import requests

from tests.support.infra import running_service


@pytest.fixture(scope="module")
def bureau_sim(broker_uri, mongo_uri, db_prefix):
    """The simulators in-process with AMQP_URI, so POST /sim/bureaus/sync reaches the plans container."""
    import eventlet
    from eventlet import wsgi

    from simulators.__main__ import build_app

    sock = eventlet.listen(("127.0.0.1", 0))
    app = build_app({"MONGO_URI": mongo_uri, "MONGO_DB_PREFIX": db_prefix, "AMQP_URI": broker_uri})
    server = eventlet.spawn(wsgi.server, sock, app, log_output=False)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.kill()
    sock.close()


@pytest.fixture(scope="module")
def plans_config(service_config, bureau_sim):
    return {**service_config, "HR_BUREAU_URL": f"{bureau_sim}/sim/bureaus/hr",
            "MEDICAL_BUREAU_URL": f"{bureau_sim}/sim/bureaus/medical",
            "PLANS_SYNC_INTERVAL_SECONDS": 3600}  # syncs in these tests are explicit


@pytest.fixture(scope="module")
def plans(plans_config):
    from plans.service import PlansService

    with running_service(PlansService, plans_config, timeout=60) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def plans_db(plans_config):
    from servicekit import config as cfg
    from servicekit.mongo import shared_client

    return shared_client(plans_config)[cfg.database_name(plans_config, "plans")]


class BureauSim:
    def __init__(self, base_url):
        self.base_url, self.http = base_url, requests.Session()

    def post(self, path, body, status=(200, 201)):
        answer = self.http.post(f"{self.base_url}{path}", json=body, timeout=60)
        assert answer.status_code in status, answer.text
        return answer.json()

    def enroll(self, id_number, name, insurance_type, region_code="230102", **extra):
        bureau = "medical" if insurance_type == "RR_MEDICAL" else "hr"
        return self.post(f"/sim/bureaus/{bureau}/enrollments", {"id_number": id_number, "name": name,
                                                                "insurance_type": insurance_type,
                                                                "region_code": region_code, **extra})

    def plan(self, plan_id, id_number, insurance_type, period, amount, **extra):
        bureau = "medical" if insurance_type == "RR_MEDICAL" else "hr"
        return self.post(f"/sim/bureaus/{bureau}/plans", {"plan_id": plan_id, "id_number": id_number,
                                                          "insurance_type": insurance_type, "period": period,
                                                          "amount": amount, **extra})

    def withdraw(self, bureau, plan_id):
        answer = self.http.delete(f"{self.base_url}/sim/bureaus/{bureau}/plans/{plan_id}", timeout=10)
        assert answer.status_code == 200, answer.text

    def fault(self, bureau, mode):
        answer = self.http.put(f"{self.base_url}/sim/bureaus/{bureau}/fault", json={"mode": mode}, timeout=10)
        assert answer.status_code == 200, answer.text

    def sync(self):
        return self.post("/sim/bureaus/sync", {})


@pytest.fixture(scope="module")
def bsim(bureau_sim):
    return BureauSim(bureau_sim)
