from datetime import datetime, timedelta, timezone

import pytest

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

    class Clock:
        def __init__(self):
            self.now = datetime.now(timezone.utc)

        def set(self, when):
            self.now = when
            sims.set_clock(when)

        def advance(self, **kwargs):
            self.set(self.now + timedelta(**kwargs))

    yield Clock()
    sims.reset_clock()
