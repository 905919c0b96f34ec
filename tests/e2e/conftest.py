import pytest

from tests.support.clock import StackClock
from tests.support.http import Api, Simulators


@pytest.fixture
def api(stack):
    return Api(stack.gateway_url)


@pytest.fixture
def sims(stack):
    return Simulators(stack.sim_url)


@pytest.fixture
def clock(sims):
    """Moves every service's clock through PUT /sim/clock; real time again after the test."""
    clock = StackClock(sims)
    yield clock
    clock.reset()
