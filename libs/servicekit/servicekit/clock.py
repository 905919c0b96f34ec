"""Time as a dependency: nothing calls datetime.now() directly.

Business rules run in Asia/Shanghai; storage is UTC-aware. In dev and tests the simulators can move every
service's clock (``PUT /sim/clock``): the offset lives in a small dev-only database (``<prefix>devclock``) that
the Clock provider reads once per worker when ``DEV_CLOCK_ENABLED`` is set. Production never enables it.
"""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from nameko.extensions import DependencyProvider

from servicekit import config as cfg

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEV_CLOCK_DOC = "offset"


class SystemClock:
    offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def local_now(self) -> datetime:
        return self.now().astimezone(SHANGHAI)


class OffsetClock(SystemClock):
    """Real time shifted by a fixed offset: 'reads now at that moment and runs on from there'."""

    def __init__(self, offset: timedelta):
        self.offset = offset


class FakeClock(SystemClock):
    """A clock that only moves when told to (unit tests)."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs):
        self._now += timedelta(**kwargs)


def dev_clock_collection(client, config):
    return client[cfg.database_name(config, "devclock")]["clock"]


def read_dev_offset(collection) -> timedelta:
    doc = collection.find_one({"_id": DEV_CLOCK_DOC})
    return timedelta(seconds=doc["offset_seconds"]) if doc else timedelta(0)


def write_dev_offset(collection, now: datetime | None):
    """Set the shared dev clock to read ``now`` from this moment on; ``None`` returns to real time."""
    if now is None:
        collection.delete_one({"_id": DEV_CLOCK_DOC})
        return
    offset = (now - datetime.now(timezone.utc)).total_seconds()
    collection.replace_one({"_id": DEV_CLOCK_DOC}, {"offset_seconds": offset}, upsert=True)


class Clock(DependencyProvider):
    """Injects a clock per worker: the system clock, shifted by the dev offset when enabled."""

    def setup(self):
        self.collection = None
        if cfg.flag(self.container.config, "DEV_CLOCK_ENABLED"):
            from servicekit.mongo import shared_client

            self.collection = dev_clock_collection(shared_client(self.container.config), self.container.config)

    def get_dependency(self, worker_ctx):
        if self.collection is None:
            return SystemClock()
        return OffsetClock(read_dev_offset(self.collection))
