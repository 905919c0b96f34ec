"""``PUT /sim/clock`` / ``DELETE /sim/clock``: move every service's clock (dev only).

Writes the offset to the dev-clock database that ``servicekit.clock.Clock`` reads when DEV_CLOCK_ENABLED.
"""
from datetime import datetime

from servicekit.clock import dev_clock_collection, write_dev_offset
from servicekit.mongo import make_client

from simulators.web import BadInput, json_body, reply, require


class DevClock:
    def __init__(self, config):
        self.config = config
        self._collection = None

    @property
    def collection(self):
        if self._collection is None:
            self._collection = dev_clock_collection(make_client(self.config["MONGO_URI"]), self.config)
        return self._collection

    def routes(self, app):
        app.route("/sim/clock", ["PUT"], self.set)
        app.route("/sim/clock", ["DELETE"], self.reset)

    def set(self, request):
        (text,) = require(json_body(request), "now")
        try:
            now = datetime.fromisoformat(text)
        except ValueError:
            raise BadInput("now must be ISO 8601", {"now": ["ISO 8601 with offset"]}) from None
        if now.tzinfo is None:
            raise BadInput("now needs an offset", {"now": ["ISO 8601 with offset"]})
        write_dev_offset(self.collection, now)
        return reply({"now": now.isoformat()})

    def reset(self, request):
        write_dev_offset(self.collection, None)
        return reply({"now": None})
