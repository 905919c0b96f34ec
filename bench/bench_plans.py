"""Plans sync: 100,000 plans from one bureau feed (the HR simulator over HTTP, pages of 1000) into the plans DB.

Prints the time to apply them, the time for an unchanged re-sync (the whole feed read again from the start:
every plan decided, nothing written), and the database round trips per 1,000 plans (a pymongo CommandListener
counts every command the sync sends). ``PLANS_BENCH_N`` changes the count. Measures; never asserts.
"""
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import eventlet
from eventlet import wsgi
from pymongo import MongoClient, monitoring

from devstack.stack import free_port, port_open, wait_until


class CommandCounter(monitoring.CommandListener):
    def __init__(self):
        self.count = 0
        self.by_name = {}

    def started(self, event):
        self.count += 1
        self.by_name[event.command_name] = self.by_name.get(event.command_name, 0) + 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def _database():
    if os.environ.get("MONGO_URI"):
        return os.environ["MONGO_URI"], None
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("secantusd-py")), "--host", "127.0.0.1",
                               "--port", str(port), "--storage-path", ":memory:"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: port_open("127.0.0.1", port), 60, "the embedded MongoDB-compatible server")
    return f"mongodb://127.0.0.1:{port}/?directConnection=true", server


def run(report):
    import requests

    from plans.adapters import HttpBureau
    from plans.repository import ensure_indexes
    from plans.sync import BureauSync
    from servicekit.clock import SystemClock
    from simulators.bureaus import Bureaus
    from simulators.web import SimApp

    count = int(os.environ.get("PLANS_BENCH_N", "100000"))
    uri, server = _database()
    sock = None
    try:
        bureaus = Bureaus({})
        app = SimApp()
        bureaus.routes(app)
        hr = bureaus.by_code["hr"]
        payers = max(1, count // 12)
        for index in range(count):
            payer = index % payers
            hr.put_plan({"plan_id": f"B{index:07d}", "id_number": f"2301021985031{payer:05d}",
                         "insurance_type": "FE_PENSION", "period": f"2025-{index // payers % 12 + 1:02d}",
                         "amount": "350.00"})
        sock = eventlet.listen(("127.0.0.1", 0))
        web = eventlet.spawn(wsgi.server, sock, app, log_output=False)
        client = HttpBureau("hr", f"http://127.0.0.1:{sock.getsockname()[1]}/sim/bureaus/hr", requests.Session())

        counter = CommandCounter()
        mongo = MongoClient(uri, tz_aware=True, w="majority", event_listeners=[counter])
        db = mongo[f"bench{uuid.uuid4().hex[:8]}_plans"]
        ensure_indexes(db)

        counter.count = 0
        started = time.monotonic()
        totals = BureauSync(db, "hr", client, SystemClock()).run()
        applied = time.monotonic() - started
        apply_trips = counter.count
        report.figure(f"apply {count:,} new plans ({totals['pages']} pages)", applied, "s")
        report.figure("  plans applied per second", count / applied if applied else 0.0, "/s")
        report.figure("  DB round trips per 1,000 plans (apply)", apply_trips * 1000 / count)

        counter.count = 0
        started = time.monotonic()
        idle = BureauSync(db, "hr", client, SystemClock()).run()
        report.figure("sync with nothing new (cursor at the end)", time.monotonic() - started, "s")
        report.figure("  DB round trips", counter.count)

        db.sync_state.update_one({"_id": "hr"}, {"$set": {"cursor": None}})
        counter.count = 0
        started = time.monotonic()
        again = BureauSync(db, "hr", client, SystemClock()).run()
        resynced = time.monotonic() - started
        report.figure(f"unchanged re-sync of all {count:,} (feed from the start)", resynced, "s")
        report.figure("  plans written by the re-sync", again["written"])
        report.figure("  DB round trips per 1,000 plans (re-sync)", counter.count * 1000 / count)
        report.figure("  events queued (apply / re-sync)", f"{totals['events']:,} / {again['events']:,}")
        del idle
        web.kill()
        mongo.drop_database(db.name)
        mongo.close()
    finally:
        if sock is not None:
            sock.close()
        if server is not None:
            server.terminate()
            server.wait(10)
