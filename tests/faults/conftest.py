"""A stack of its own for fault tests: two processes each of orders and payment_gateway (competing consumers),
its own vhost and databases, so killing and restarting processes never disturbs the shared `stack`."""
import uuid

import pytest

from devstack.stack import Stack, free_port
from tests.support.clock import StackClock
from tests.support.http import Simulators
from tests.support.infra import ARTIFACTS
from tests.support.payflow import future_open_time

SCALE = {"orders": 2, "payment_gateway": 2}


@pytest.fixture(scope="module")
def scaled_stack(vhosts, mongo_uri):
    run_dir = ARTIFACTS / "faults-stack"
    for old in (run_dir / "logs").glob("*.log"):
        old.unlink()
    stack = Stack(run_dir=run_dir, gateway_port=free_port(), sim_port=free_port(), mongo_uri=mongo_uri,
                  amqp_uri=vhosts.new(), db_prefix=f"flt{uuid.uuid4().hex[:8]}_", scale=SCALE,
                  extra_env={"TOKEN_SECRET": "faults-token-secret", "SMS_CODE_SECRET": "faults-sms-secret",
                             "CLIENT_RATE_LIMIT_PER_MINUTE": "100000", "MAX_WORKERS": "20"})
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def fault_sims(scaled_stack):
    return Simulators(scaled_stack.sim_url)


@pytest.fixture(scope="module")
def fault_clock(fault_sims):
    clock = StackClock(fault_sims)
    clock.set(future_open_time())  # inside the collection window, never in the past (TTL indexes)
    yield clock
    clock.reset()
