"""reliable_event_handler on the real broker and database: quorum queues, dead letters, the ops command, replay
applying the state change once."""
import io
import uuid
from urllib.parse import unquote, urlparse

import eventlet
import prometheus_client as prom
import pytest
import requests
from kombu import Connection, Queue
from marshmallow import Schema, fields
from nameko.containers import ServiceContainer
from nameko.dependency_providers import Config
from nameko.standalone.events import event_dispatcher
from pymongo.errors import AutoReconnect

from servicekit import dlq
from servicekit.events import ProcessedEvents
from servicekit.mongo import MongoDatabase
from servicekit.reliable import DeadLetters, QueueMismatch, read_dead_letters, reliable_event_handler

BROKEN = {"on": False, "outage": 0}


class Credit(Schema):
    event_id = fields.String(required=True)
    account = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    id_number = fields.String(load_default=None)


def _indexes(db):
    ProcessedEvents.ensure_indexes(db)


class LedgerService:
    name = "ledger"
    config = Config()
    db = MongoDatabase("ledger", _indexes)
    dead_letters = DeadLetters()

    @reliable_event_handler("bank", "amount.credited")
    def on_credit(self, payload):
        event = Credit().load(payload)
        if BROKEN["on"]:
            raise RuntimeError("ledger database is read-only")
        if BROKEN["outage"]:
            BROKEN["outage"] -= 1
            raise AutoReconnect("database unreachable")
        if ProcessedEvents(self.db, "ledger").record(event["event_id"], None):
            self.db.accounts.update_one({"_id": event["account"]}, {"$inc": {"balance_fen": event["amount_fen"]}},
                                        upsert=True)


@pytest.fixture(scope="module")
def config(broker_uri, mongo_uri, db_prefix):
    return {"AMQP_URI": broker_uri, "MONGO_URI": mongo_uri, "MONGO_DB_PREFIX": db_prefix,
            "EVENT_RETRY_BACKOFF": "0.05,0.05"}


@pytest.fixture(scope="module")
def ledger(config):
    container = ServiceContainer(LedgerService, config)
    container.start()
    yield container
    container.stop()


@pytest.fixture(scope="module")
def db(ledger):
    return next(d for d in ledger.dependencies if isinstance(d, MongoDatabase)).db


def _management_queue(vhosts, broker_uri, name):
    vhost = unquote(urlparse(broker_uri.replace("pyamqp://", "amqp://")).path.lstrip("/"))
    answer = requests.get(f"{vhosts.api}/queues/{requests.utils.quote(vhost, safe='')}/{name}", auth=vhosts.auth,
                          timeout=10)
    answer.raise_for_status()
    return answer.json()


def _wait(predicate, timeout=20):
    deadline = eventlet.hubs.get_hub().clock() + timeout
    while eventlet.hubs.get_hub().clock() < deadline:
        value = predicate()
        if value:
            return value
        eventlet.sleep(0.1)
    raise AssertionError("timed out")


def _cli(*argv):
    out = io.StringIO()
    code = dlq.main(list(argv), out=out)
    return code, out.getvalue()


def test_handler_and_dead_letter_queues_are_durable_quorum_queues(ledger, vhosts, broker_uri):
    handler = _management_queue(vhosts, broker_uri, "evt-bank-amount.credited--ledger.on_credit")
    assert handler["type"] == "quorum" and handler["durable"] and not handler["auto_delete"]
    assert handler["arguments"]["x-dead-letter-routing-key"] == "dlq.ledger"
    assert _management_queue(vhosts, broker_uri, "dlq.ledger")["type"] == "quorum"


def test_failing_handler_dead_letters_then_replay_applies_once(ledger, config, db):
    account, event_id = f"acct-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    before = prom.REGISTRY.get_sample_value(
        "sitax_dead_letters_total", {"service": "ledger", "event_type": "amount.credited",
                                     "reason": "retries_exhausted"}) or 0
    BROKEN["on"] = True
    try:
        event_dispatcher(config)("bank", "amount.credited",
                                 {"event_id": event_id, "account": account, "amount_fen": 35000,
                                  "id_number": "34052419800101001X"})
        _wait(lambda: any(letter["payload"]["event_id"] == event_id
                          for letter in read_dead_letters(config["AMQP_URI"], "ledger")))
    finally:
        BROKEN["on"] = False
    assert db.accounts.find_one({"_id": account}) is None  # nothing applied, nothing lost
    assert prom.REGISTRY.get_sample_value(
        "sitax_dead_letters_total", {"service": "ledger", "event_type": "amount.credited",
                                     "reason": "retries_exhausted"}) == before + 1

    code, listing = _cli("--amqp-uri", config["AMQP_URI"], "list", "ledger")
    assert code == 0 and event_id in listing and "amount.credited -> on_credit" in listing
    number = next(line.split()[0] for line in listing.splitlines() if event_id in line)
    code, shown = _cli("--amqp-uri", config["AMQP_URI"], "inspect", "ledger", number)
    assert code == 0 and "read-only" in shown and '"attempts": 3' in shown
    assert "34052419800101001X" not in shown and "3405**********001X" in shown  # ops console: masked

    code, replayed = _cli("--amqp-uri", config["AMQP_URI"], "replay", "ledger", number)
    assert code == 0 and "replayed" in replayed
    _wait(lambda: (db.accounts.find_one({"_id": account}) or {}).get("balance_fen") == 35000)
    assert event_id not in _cli("--amqp-uri", config["AMQP_URI"], "list", "ledger")[1]
    # the same event once more (a replay after a lost ack, a redelivery): still applied once
    event_dispatcher(config)("bank", "amount.credited", {"event_id": event_id, "account": account,
                                                         "amount_fen": 35000})
    eventlet.sleep(1)
    assert db.accounts.find_one({"_id": account})["balance_fen"] == 35000


def test_a_database_outage_requeues_instead_of_dead_lettering(ledger, config, db):
    account, event_id = f"acct-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    BROKEN["outage"] = 5  # three attempts per delivery: the first delivery gives up, the second gets through
    event_dispatcher(config)("bank", "amount.credited", {"event_id": event_id, "account": account,
                                                         "amount_fen": 100})
    _wait(lambda: db.accounts.find_one({"_id": account}))
    assert BROKEN["outage"] == 0 and db.accounts.find_one({"_id": account})["balance_fen"] == 100
    assert not [letter for letter in read_dead_letters(config["AMQP_URI"], "ledger")
                if letter["payload"]["event_id"] == event_id]


def test_malformed_event_goes_straight_to_the_dead_letter_queue(ledger, config):
    event_id = uuid.uuid4().hex
    event_dispatcher(config)("bank", "amount.credited", {"event_id": event_id, "account": "x"})  # no amount
    letter = _wait(lambda: next((letter for letter in read_dead_letters(config["AMQP_URI"], "ledger")
                                 if letter["payload"]["event_id"] == event_id), None))
    assert letter["reason"] == "rejected" and letter["attempts"] == 1 and "amount_fen" in letter["error"]


def test_a_classic_queue_of_the_same_name_stops_the_service_with_what_to_do(vhosts, mongo_uri, db_prefix):
    uri = vhosts.new()
    with Connection(uri) as connection:  # what an older version left on a dev broker
        Queue("evt-bank-amount.credited--ledger.on_credit", durable=True)(connection.default_channel).declare()
    container = ServiceContainer(LedgerService, {"AMQP_URI": uri, "MONGO_URI": mongo_uri,
                                                 "MONGO_DB_PREFIX": db_prefix})
    with pytest.raises(QueueMismatch) as refused:
        container.start()
    container.kill()
    assert "quorum" in str(refused.value) and "rabbitmqctl delete_queue" in str(refused.value)


def test_replaying_a_letter_that_is_gone_says_so(ledger, config):
    code, _ = _cli("--amqp-uri", config["AMQP_URI"], "replay", "ledger", "no-such-letter")
    assert code == 2
