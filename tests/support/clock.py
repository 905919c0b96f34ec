"""Moving every service's clock in the running stack (PUT /sim/clock), back to real time afterwards.

The services' clocks run on from the moment they are set, so the clock is kept as an offset from real time:
``advance(seconds=61)`` always means 61 s after what the services read just now, however long the test took
between two steps.
"""
from datetime import datetime, timedelta, timezone


class StackClock:
    def __init__(self, sims):
        self.sims = sims
        self.offset = timedelta(0)

    @property
    def now(self):
        return datetime.now(timezone.utc) + self.offset

    def set(self, when):
        self.offset = when - datetime.now(timezone.utc)
        self.sims.set_clock(self.now)

    def advance(self, **kwargs):
        self.offset += timedelta(**kwargs)
        self.sims.set_clock(self.now)

    def reset(self):
        self.offset = timedelta(0)
        self.sims.reset_clock()
