"""Event handlers that never acknowledge and forget a message.

Nameko's ``@event_handler`` acks a message whether the handler succeeded or raised. ``reliable_event_handler``
instead:

1. runs the handler; on an exception retries it in the same worker with back-off (the message stays unacked
   meanwhile, so a crash during the retries hands it back to the broker for another worker);
2. after the last attempt publishes the message, the error and the handler name to the durable queue
   ``dlq.<service>`` (persistent, publisher confirms) and only then lets Nameko ack it;
3. if even the dead-letter publish fails, the message is requeued (``requeue_on_error``), not dropped.

Ops read ``dlq.<service>`` (``read_dead_letters`` below, or the RabbitMQ console) and replay with
``replay_dead_letter`` once the cause is fixed. Handlers must be idempotent: a retried or replayed event
may have partly applied before.

Usage::

    class OrdersService:
        dead_letters = DeadLetters()

        @reliable_event_handler("payment_gateway", "payment.succeeded")
        def on_payment_succeeded(self, event): ...
"""
import json
import logging
import traceback
from datetime import datetime, timezone
from functools import wraps

import eventlet
from kombu import Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.events import event_handler
from nameko.extensions import DependencyProvider

from servicekit import config as cfg
from servicekit.pii import redact_id_numbers

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = (0.5, 1, 2, 4)  # seconds between attempts: five attempts in all


def dlq_name(service_name):
    return f"dlq.{service_name}"


class DeadLetterPublisher:
    def __init__(self, amqp_uri, service_name):
        self.queue = Queue(dlq_name(service_name), exchange=Exchange(""), routing_key=dlq_name(service_name),
                           durable=True, auto_delete=False)
        self.publisher = Publisher(amqp_uri, use_confirms=True, serializer="json", declare=[self.queue])

    def publish(self, source_service, event_type, handler, payload, error, attempts):
        record = {
            "source_service": source_service, "event_type": event_type, "handler": handler,
            "payload": payload, "attempts": attempts,
            "error": redact_id_numbers(error),
            "dead_lettered_at": datetime.now(timezone.utc).isoformat(),
        }
        self.publisher.publish(record, exchange=Exchange(""), routing_key=self.queue.name)


class DeadLetters(DependencyProvider):
    """Declares ``dlq.<service>`` at start and gives handlers a publisher for it."""

    def setup(self):
        self.publisher = DeadLetterPublisher(cfg.setting(self.container.config, "AMQP_URI"),
                                             self.container.service_name)
    def start(self):
        # Declared at start, so ops see the queue before anything is dead-lettered.
        from kombu import Connection

        with Connection(cfg.setting(self.container.config, "AMQP_URI")) as connection:
            self.publisher.queue(connection.default_channel).declare()

    def get_dependency(self, worker_ctx):
        return self.publisher


def _backoff_from_config(config, default):
    text = cfg.setting(config, "EVENT_RETRY_BACKOFF", None)
    if not text:
        return tuple(default)
    return tuple(float(part) for part in str(text).split(",") if part.strip())


def reliable_event_handler(source_service, event_type, backoff=DEFAULT_BACKOFF, **kwargs):
    """``@event_handler`` with retries and a dead-letter queue (see the module docstring).

    The service needs a ``DeadLetters()`` dependency (any attribute name). ``EVENT_RETRY_BACKOFF`` in the
    config ("0.5,1,2,4") overrides ``backoff``: len(backoff) + 1 attempts.
    """
    kwargs.setdefault("requeue_on_error", True)  # only reached when the dead-letter publish itself failed

    def decorate(fn):
        @wraps(fn)
        def wrapper(self, payload):
            delays = _backoff_from_config(getattr(self, "config", {}) or {}, backoff)
            attempts = len(delays) + 1
            for attempt in range(1, attempts + 1):
                try:
                    return fn(self, payload)
                except Exception as exc:
                    if attempt == attempts:
                        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                        log.error("%s.%s failed %d times on %s; dead-lettering: %s", type(self).__name__,
                                  fn.__name__, attempts, event_type, redact_id_numbers(error))
                        _dead_letters(self).publish(source_service, event_type, fn.__name__, payload,
                                                    error + "\n" + traceback.format_exc(limit=5), attempts)
                        return None
                    log.warning("%s on %s failed (attempt %d/%d): %s; retrying in %ss", fn.__name__,
                                event_type, attempt, attempts, type(exc).__name__, delays[attempt - 1])
                    eventlet.sleep(delays[attempt - 1])

        return event_handler(source_service, event_type, **kwargs)(wrapper)

    return decorate


def _dead_letters(service):
    for name in dir(type(service)):
        if isinstance(getattr(type(service), name, None), DeadLetters):
            return getattr(service, name)
    raise RuntimeError(f"{type(service).__name__} uses reliable_event_handler without a DeadLetters() dependency")


# ---- ops tools --------------------------------------------------------------------------------
def read_dead_letters(amqp_uri, service_name, limit=100, remove=False):
    """The dead letters waiting in ``dlq.<service>`` (left in place unless ``remove``)."""
    from kombu import Connection

    letters = []
    with Connection(amqp_uri) as connection:
        channel = connection.default_channel
        queue = Queue(dlq_name(service_name), exchange=Exchange(""), routing_key=dlq_name(service_name),
                      durable=True)(channel)
        queue.declare()
        held = []
        for _ in range(limit):
            message = queue.get(no_ack=False)
            if message is None:
                break
            letters.append(json.loads(message.body) if isinstance(message.body, (str, bytes)) else message.body)
            held.append(message)
        for message in held:
            message.ack() if remove else message.requeue()
    return letters


def replay_dead_letter(amqp_uri, letter):
    """Publish a dead letter's event again to its source exchange (after the cause is fixed)."""
    from nameko.standalone.events import get_event_exchange

    exchange = get_event_exchange(letter["source_service"], {})
    Publisher(amqp_uri, use_confirms=True, serializer="json", declare=[exchange]).publish(
        letter["payload"], exchange=exchange, routing_key=letter["event_type"])
