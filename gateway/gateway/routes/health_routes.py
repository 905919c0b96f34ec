"""Liveness, readiness and the OpenAPI document."""
import time

import eventlet
import prometheus_client as prom
from kombu import Connection
from nameko.timer import timer
from werkzeug.wrappers import Response

from servicekit import config as cfg

from gateway import schemas as s
from gateway.http import endpoint, json_response
from gateway.openapi import build_spec

SERVICES = ("identity", "plans", "orders", "payment_gateway", "certs")
READY_TIMEOUT_SECONDS = 3
BROKER_CHECK_INTERVAL_SECONDS = 2
BROKER_CHECK_STALE_SECONDS = 10


class HealthRoutes:
    @endpoint("GET", "/health", summary="The gateway runs and reaches the broker", tag="ops", auth=None,
              response=s.HealthResponse(), errors=("SERVICE_UNAVAILABLE",))
    def health(self, request):
        if not self.broker_reachable():
            return json_response({"status": "unavailable", "checks": {"broker": "unreachable"}}, 503)
        return {"status": "ok"}

    @endpoint("GET", "/health/ready", summary="Every service answers over RPC", tag="ops", auth=None,
              response=s.HealthResponse(), errors=("SERVICE_UNAVAILABLE",))
    def ready(self, request):
        checks = {"broker": "ok" if self.broker_reachable() else "unreachable"}
        pool = eventlet.GreenPool()
        for name, answer in zip(SERVICES, pool.imap(self.ping_service, SERVICES)):
            checks[name] = answer
        ok = all(value == "ok" for value in checks.values())
        # Shown, not gating: a bureau being down must not take every gateway out of the load balancer (the
        # plans service serves its last good data), and a fresh system that has not synced yet is "pending".
        checks["plans_sync"] = self.plans_sync_check() if checks.get("plans") == "ok" else "unknown"
        return json_response({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)

    def plans_sync_check(self):
        """"fresh" | "pending" | "stale: hr (age 900s)" from plans.sync_status (PLANS_SYNC_STALE_AFTER_SECONDS)."""
        try:
            with eventlet.Timeout(READY_TIMEOUT_SECONDS):
                status = self.plans_rpc.sync_status()
        except eventlet.Timeout:
            return "timeout"
        except Exception as exc:
            return f"error: {type(exc).__name__}"
        stale = [f"{code} (age {b['age_seconds']}s)" if b["age_seconds"] is not None else f"{code} (never synced)"
                 for code, b in status["bureaus"].items() if b["status"] == "stale"]
        return f"stale: {', '.join(stale)}" if stale else status["status"]

    @endpoint("GET", "/metrics", summary="Prometheus metrics of this gateway process", tag="ops", auth=None,
              content_type="text/plain")
    def metrics(self, request):
        return Response(prom.generate_latest(), content_type=prom.CONTENT_TYPE_LATEST)

    @endpoint("GET", "/openapi.json", summary="This document", tag="ops", auth=None)
    def openapi(self, request):
        if self._openapi is None:
            type(self)._openapi = build_spec()
        return self._openapi

    _openapi = None
    _broker_check = (float("-inf"), False)

    @timer(interval=BROKER_CHECK_INTERVAL_SECONDS)
    def check_broker(self):
        """Probes and load balancers call /health often: the broker is checked here, in the background, so no
        request ever waits for an AMQP handshake."""
        HealthRoutes._broker_check = (time.monotonic(), self.connect_to_broker())

    def broker_reachable(self):
        checked_at, reachable = HealthRoutes._broker_check
        if time.monotonic() - checked_at > BROKER_CHECK_STALE_SECONDS:  # not checked yet, or the timer is stuck
            reachable = self.connect_to_broker()
            HealthRoutes._broker_check = (time.monotonic(), reachable)
        return reachable

    def connect_to_broker(self):
        try:
            with Connection(cfg.setting(self.config, "AMQP_URI"), connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
            return True
        except Exception:
            return False

    def ping_service(self, name):
        try:
            with eventlet.Timeout(READY_TIMEOUT_SECONDS):
                getattr(self, f"{name}_rpc").ping()
            return "ok"
        except eventlet.Timeout:
            return "timeout"
        except Exception as exc:
            return f"error: {type(exc).__name__}"
