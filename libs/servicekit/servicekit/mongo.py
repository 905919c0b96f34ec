"""MongoDB access: one client per process, one database per service, indexes declared at start."""
import threading

from nameko.extensions import DependencyProvider
from pymongo import MongoClient
from pymongo.write_concern import WriteConcern

from servicekit import config as cfg

_clients = {}
_clients_lock = threading.Lock()


def make_client(uri: str) -> MongoClient:
    # majority write concern: an acknowledged write survives a primary failover on a replica set.
    return MongoClient(uri, tz_aware=True, w="majority", serverSelectionTimeoutMS=5000, appname="sitax")


def shared_client(config) -> MongoClient:
    uri = cfg.setting(config, "MONGO_URI", "mongodb://127.0.0.1:27017/?directConnection=true")
    with _clients_lock:
        if uri not in _clients:
            _clients[uri] = make_client(uri)
        return _clients[uri]


class MongoDatabase(DependencyProvider):
    """Gives workers the service's own database.

    ``ensure_indexes(db)`` (from the service's repository module) runs once at container setup, so every
    query has its index before the first request and index declarations live in one place.
    """

    def __init__(self, service_name, ensure_indexes=None):
        self.service_name = service_name
        self.ensure_indexes = ensure_indexes

    def setup(self):
        client = shared_client(self.container.config)
        self.db = client.get_database(
            cfg.database_name(self.container.config, self.service_name),
            write_concern=WriteConcern(w="majority"),
        )
        if self.ensure_indexes:
            self.ensure_indexes(self.db)

    def get_dependency(self, worker_ctx):
        return self.db


def in_transaction(db, callback):
    """Run ``callback(session)`` in one transaction, retried on transient conflicts (concurrent writers)."""
    with db.client.start_session() as session:
        return session.with_transaction(callback)
