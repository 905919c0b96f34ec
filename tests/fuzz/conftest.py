"""Fixtures of the fuzz tests: the running stack's OpenAPI document and a logged-in payer with payable plans."""
from datetime import datetime

import pytest
import schemathesis

from servicekit.clock import SHANGHAI
from tests.support.http import Api, Simulators, add_bureau_plan, sync_bureaus
from tests.support.payers import register_and_login
from tests.support.people import new_id_number

# Inside the collection window, so that orders get past the window check and the fuzzer reaches the rules behind it.
OPEN_TIME = datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def fuzz_sims(stack):
    sims = Simulators(stack.sim_url)
    sims.set_clock(OPEN_TIME)
    yield sims
    sims.reset_clock()


@pytest.fixture(scope="module")
def fuzz_payer(stack, fuzz_sims):
    """A payer with three payable bureau plans, logged in through the API (the fuzzer's bearer token)."""
    api = Api(stack.gateway_url)
    id_number = new_id_number()
    fuzz_sims.enroll(id_number, "孙模糊", "FE_PENSION", enrolled_on="2020-01-01")
    for period in ("2026-01", "2026-02", "2026-03"):
        add_bureau_plan(fuzz_sims, f"HR-FZ-{id_number}-{period}", id_number, "FE_PENSION", period, "350.00")
    sync_bureaus(fuzz_sims)
    return register_and_login(api, fuzz_sims, "孙模糊", id_number=id_number, enroll=False)


@pytest.fixture(scope="module")
def api_schema(stack):
    """The document the gateway serves, loaded as a front-end generator would load it."""
    return schemathesis.openapi.from_url(f"{stack.gateway_url}/openapi.json")
