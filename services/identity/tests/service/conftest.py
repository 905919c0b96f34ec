import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from identity.service import IdentityService
from tests.support.http import Simulators


@pytest.fixture(scope="module")
def identity(service_config):
    """identity in a Nameko container against the real broker and database, with a standalone RPC proxy."""
    from nameko.containers import ServiceContainer

    container = ServiceContainer(IdentityService, service_config)
    container.start()
    with ServiceRpcProxy("identity", service_config, timeout=30) as proxy:
        yield proxy
    container.stop()


@pytest.fixture(scope="module")
def sims(simulators):
    return Simulators(simulators)


@pytest.fixture
def clock(sims):
    """Moves every service's clock (PUT /sim/clock); back to real time after the test."""
    from datetime import datetime, timedelta, timezone

    class Clock:
        def __init__(self):
            self.now = datetime.now(timezone.utc)

        def advance(self, **kwargs):
            self.now += timedelta(**kwargs)
            sims.set_clock(self.now)

    yield Clock()
    sims.reset_clock()
