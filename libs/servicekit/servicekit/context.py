"""Request id propagation: the gateway puts it in Nameko context data, every service logs it."""
import threading
import uuid

from nameko.extensions import DependencyProvider

REQUEST_ID_KEY = "request_id"
_local = threading.local()  # eventlet-patched: one value per greenthread (= per worker)


def current_request_id() -> str:
    return getattr(_local, "request_id", None) or "-"


def set_request_id(value):
    _local.request_id = value


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestContext(DependencyProvider):
    """Makes the caller's request id visible to logging for the duration of a worker."""

    def worker_setup(self, worker_ctx):
        set_request_id(worker_ctx.data.get(REQUEST_ID_KEY))

    def worker_teardown(self, worker_ctx):
        set_request_id(None)

    def get_dependency(self, worker_ctx):
        return worker_ctx.data.get(REQUEST_ID_KEY)
