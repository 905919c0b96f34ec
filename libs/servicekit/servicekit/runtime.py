"""What every service process carries besides its business: the production configuration guard, metrics for
every entrypoint, and a small ops HTTP port (``OPS_PORT``) with ``/healthz`` and ``/metrics`` for probes and
Prometheus. Add ``runtime = ServiceRuntime()`` to a service class.
"""
import logging
import threading
import time
import weakref

import eventlet
import prometheus_client as prom
from eventlet import wsgi
from marshmallow import ValidationError
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from servicekit import amqp_acks, config as cfg
from servicekit import production
from servicekit.errors import AppError

log = logging.getLogger(__name__)
amqp_acks.install()  # a broker restart must not kill the services that carry a ServiceRuntime

ENTRYPOINT_SECONDS = prom.Histogram(
    "sitax_entrypoint_seconds", "Time spent in a service entrypoint (RPC, event handler, HTTP, timer)",
    ["service", "entrypoint", "kind"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
ENTRYPOINT_RESULTS = prom.Counter(
    "sitax_entrypoint_results_total", "Entrypoint outcomes: ok, an API error code, an HTTP status, or error",
    ["service", "entrypoint", "result"])

_server_lock = threading.Lock()
_servers = {}
_stopping = set()  # services of this process that are shutting down: /healthz turns 503 for the probes


def _ops_app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/metrics":
        response = Response(prom.generate_latest(), content_type=prom.CONTENT_TYPE_LATEST)
    elif path == "/healthz":
        response = Response('{"status": "%s"}' % ("stopping" if _stopping else "ok"),
                            status=503 if _stopping else 200, content_type="application/json")
    else:
        response = Response('{"error": "not found"}', status=404, content_type="application/json")
    return response(environ, start_response)


def start_ops_server(port):
    """One ops server per process, whatever the number of containers in it."""
    with _server_lock:
        if port not in _servers:
            sock = eventlet.listen(("0.0.0.0", port))
            _servers[port] = eventlet.spawn(wsgi.server, sock, _ops_app, log_output=False)
            log.info("ops endpoints on :%s (/healthz, /metrics)", port)


def _result_label(result, exc_info):
    if exc_info is not None:
        exc = exc_info[1]
        if isinstance(exc, ValidationError):
            return "VALIDATION_ERROR"
        return exc.code if isinstance(exc, AppError) else "error"
    status = getattr(result, "status_code", None)
    return str(status) if status is not None else "ok"


class ServiceRuntime(DependencyProvider):
    def setup(self):
        production.check(self.container.config, self.container.service_name)
        self._started = weakref.WeakKeyDictionary()
        _stopping.discard(self.container.service_name)
        port = cfg.integer(self.container.config, "OPS_PORT", 0)
        if port:
            start_ops_server(port)

    def stop(self):
        _stopping.add(self.container.service_name)

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        service, name = self.container.service_name, worker_ctx.entrypoint.method_name
        if started is not None:
            ENTRYPOINT_SECONDS.labels(service, name, type(worker_ctx.entrypoint).__name__).observe(
                time.perf_counter() - started)
        ENTRYPOINT_RESULTS.labels(service, name, _result_label(result, exc_info)).inc()

    def get_dependency(self, worker_ctx):
        return None
