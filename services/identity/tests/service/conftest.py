import pytest

from identity.service import IdentityService
from tests.support.clock import StackClock
from tests.support.http import Simulators
from tests.support.infra import running_service


@pytest.fixture(scope="module")
def identity(service_config):
    """identity in a Nameko container against the real broker and database, with a standalone RPC proxy."""
    with running_service(IdentityService, service_config) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def plans(service_config):
    """The plans service: identity's tax registry is the HR enrolments it has synced."""
    from plans.service import PlansService

    with running_service(PlansService, service_config, timeout=60) as proxy:
        yield proxy


class SyncingSimulators(Simulators):
    """An enrolment reaches the tax registry with the next sync: make it now, as POST /sim/bureaus/sync does."""

    def __init__(self, base_url, plans):
        super().__init__(base_url)
        self.plans = plans

    def enroll(self, *args, **kwargs):
        enrolment = super().enroll(*args, **kwargs)
        result = self.plans.sync_now()
        assert all(r["ok"] for r in result.values()), result
        return enrolment


@pytest.fixture(scope="module")
def sims(simulators, plans):
    return SyncingSimulators(simulators, plans)


@pytest.fixture
def clock(sims):
    """Moves every service's clock (PUT /sim/clock); back to real time after the test."""
    clock = StackClock(sims)
    yield clock
    clock.reset()
