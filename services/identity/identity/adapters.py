"""The outside systems identity talks to: an SMS gateway and the two enrolment registries.

Each is reached over HTTP at a configured base URL. In dev and tests the URLs point at the simulators
(``simulators/``); in production at the real SMS gateway, the tax registry and the medical bureau.
"""
import logging

import eventlet
import requests
from nameko.extensions import DependencyProvider

from servicekit import config as cfg
from servicekit.pii import mask_phone

from identity.domain import MEDICAL_BUREAU

log = logging.getLogger(__name__)
TIMEOUT = (2, 5)  # connect, read seconds


class AdapterUnavailable(Exception):
    """The outside system could not be reached or answered nonsense."""


class HttpSmsGateway:
    def __init__(self, base_url, http):
        self.base_url, self.http = base_url.rstrip("/"), http

    def send(self, phone, text):
        try:
            answer = self.http.post(f"{self.base_url}/messages", json={"phone": phone, "text": text},
                                    timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise AdapterUnavailable(f"SMS gateway unreachable: {type(exc).__name__}") from None
        if answer.status_code not in (200, 201, 202):
            raise AdapterUnavailable(f"SMS gateway answered {answer.status_code}")
        log.info("SMS sent to %s", mask_phone(phone))


class HttpEnrollmentRegistry:
    """Asks a registry for the 参保登记 of one ID number: ``GET <base>/enrollments?id_number=``."""

    def __init__(self, base_url, http):
        self.base_url, self.http = base_url.rstrip("/"), http

    def enrollments(self, id_number):
        try:
            answer = self.http.get(f"{self.base_url}/enrollments", params={"id_number": id_number},
                                   timeout=TIMEOUT)
            answer.raise_for_status()
            items = answer.json()["enrollments"]
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ValueError("enrollments is not a list of objects")
            return items
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise AdapterUnavailable(f"registry {self.base_url} failed: {type(exc).__name__}") from None


class PlansEnrollmentRegistry:
    """The tax registry: the HR bureau's enrolments as synced by the plans service (``plans.enrollments``).

    Asked over RPC with a deadline: a plans service that does not answer is 'cannot verify now', never a hang.
    """

    TIMEOUT_SECONDS = 5

    def __init__(self, plans_rpc):
        self.plans_rpc = plans_rpc

    def enrollments(self, id_number):
        try:
            with eventlet.Timeout(self.TIMEOUT_SECONDS):
                items = self.plans_rpc.enrollments(id_number)
        except eventlet.Timeout:
            raise AdapterUnavailable("tax registry (plans) did not answer in time") from None
        except Exception as exc:  # RemoteError, broker trouble: cannot verify now
            raise AdapterUnavailable(f"tax registry (plans) failed: {type(exc).__name__}") from None
        if not isinstance(items, list):
            raise AdapterUnavailable("tax registry (plans) answered nonsense")
        return items


class SmsGateway(DependencyProvider):
    def setup(self):
        self.gateway = HttpSmsGateway(cfg.setting(self.container.config, "SMS_GATEWAY_URL",
                                                  "http://127.0.0.1:8100/sim/sms"), requests.Session())

    def get_dependency(self, worker_ctx):
        return self.gateway


class EnrollmentRegistries(DependencyProvider):
    """``registries[MEDICAL_BUREAU]`` (asked live over HTTP). The tax registry is the plans service's synced
    HR enrolments: ``PlansEnrollmentRegistry`` over the service's ``plans_rpc``."""

    def setup(self):
        config, http = self.container.config, requests.Session()
        self.registries = {
            MEDICAL_BUREAU: HttpEnrollmentRegistry(
                cfg.setting(config, "MEDICAL_BUREAU_URL", "http://127.0.0.1:8100/sim/bureaus/medical"), http),
        }

    def get_dependency(self, worker_ctx):
        return self.registries
