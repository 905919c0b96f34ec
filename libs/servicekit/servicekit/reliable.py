"""Event handlers that never acknowledge and forget a message, on queues that survive a broker restart.

Nameko's ``@event_handler`` acks a message whether the handler succeeded or raised. ``reliable_event_handler``
instead:

1. runs the handler; on an exception retries it in the same worker with back-off (the message stays unacked
   meanwhile, so a crash during the retries hands it back to the broker for another worker). An exception in
   ``permanent`` (default: marshmallow ``ValidationError``, a malformed event) skips the retries;
2. after the last attempt publishes the message, the error and the handler to the durable quorum queue
   ``dlq.<service>`` (persistent, publisher confirms) and only then lets Nameko ack it;
3. if even the dead-letter publish fails, the message is requeued (``requeue_on_error``), not dropped;
4. an outage rather than a bad message (``transient``, default: the database unreachable) is not dead-lettered
   after the attempts: the message is requeued and waits for the database, up to the delivery limit below.

Queues: the handler's queue ``evt-<source>-<event>--<service>.<method>`` and ``dlq.<service>`` are durable
quorum queues (replicated on a RabbitMQ cluster, messages kept across broker restarts). As a safety net for
what step 3 keeps requeueing (or a worker that dies on a message every time), the handler queue has a
delivery limit after which the broker itself dead-letters the message to ``dlq.<service>`` (at-least-once
dead-lettering). Prefetch: Nameko sets a per-consumer QoS of ``max_workers`` (``MAX_WORKERS``), so unacked
messages per queue and process are bounded by configuration.

Publishing side (checked in nameko/amqp/publish.py, Nameko 2.14): ``Publisher`` defaults to
``use_confirms = True`` and ``delivery_mode = PERSISTENT``, and ``EventDispatcher`` is a ``Publisher``, so every
event the outbox relay (``servicekit.events.relay_outbox``) dispatches is persistent and confirmed before the
entry is marked sent; the event exchanges are durable (``get_event_exchange``). The dead-letter and replay
publishers below ask for confirms explicitly.

Ops: ``python -m servicekit.dlq`` / ``make dlq`` list, inspect and replay dead letters (the helpers at the end
of this module). A replay goes to the failed handler's own queue only, then the letter is acked; handlers must
be idempotent (a retried or replayed event may have partly applied before, and a crash between the replay's
confirm and the ack replays it again).

Usage::

    class OrdersService:
        dead_letters = DeadLetters()

        @reliable_event_handler("payment_gateway", "payment.succeeded")
        def on_payment_succeeded(self, event): ...
"""
import json
import logging
import traceback
import uuid
from datetime import datetime, timezone
from functools import wraps

import eventlet
from amqp.exceptions import NotFound, PreconditionFailed
from kombu import Connection, Exchange, Queue
from marshmallow import ValidationError
from pymongo.errors import ConnectionFailure
from nameko.amqp.publish import Publisher
from nameko.events import SERVICE_POOL, EventHandler
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange

from servicekit import config as cfg
from servicekit import metrics
from servicekit.pii import redact_id_numbers

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = (0.5, 1, 2, 4)  # seconds between attempts: five attempts in all
# Deliveries of one message before the broker dead-letters it itself: reached when a worker dies on it, the
# dead-letter publish keeps failing, or the database stays away for (at least) 30 x the back-off total.
# Part of the queue's arguments: changing it means redeclaring the queue.
DELIVERY_LIMIT = 30
QUORUM = {"x-queue-type": "quorum"}


def dlq_name(service_name):
    return f"dlq.{service_name}"


def handler_queue_name(source_service, event_type, service_name, method_name):
    """Nameko's SERVICE_POOL queue name: one queue per handler method, shared by the service's instances."""
    return f"evt-{source_service}-{event_type}--{service_name}.{method_name}"


def dlq_queue(service_name):
    return Queue(dlq_name(service_name), exchange=Exchange(""), routing_key=dlq_name(service_name),
                 durable=True, auto_delete=False, queue_arguments=dict(QUORUM))


def handler_queue_arguments(service_name):
    return {**QUORUM, "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq_name(service_name),
            # at-least-once dead-lettering needs reject-publish; no max-length is set, so nothing is rejected
            "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


class QueueMismatch(RuntimeError):
    """A queue of this name exists with other arguments (typically a classic queue from an older version)."""


def declare(amqp_uri, queue):
    """Declare ``queue`` now, turning RabbitMQ's PRECONDITION_FAILED into an error that says what to do."""
    with Connection(amqp_uri) as connection:
        try:
            queue(connection.default_channel).declare()
        except PreconditionFailed as exc:
            raise QueueMismatch(
                f"RabbitMQ already has a queue {queue.name!r} with other arguments ({exc.reply_text}). "
                f"This version declares it as a durable quorum queue ({queue.queue_arguments}). On a dev broker, "
                f"delete the old queue (rabbitmqctl delete_queue {queue.name} [-p <vhost>]) after draining it, "
                f"or use a fresh vhost in AMQP_URI; in production, migrate it (see README, Configuration)."
            ) from None


class DeadLetterPublisher:
    def __init__(self, amqp_uri, service_name):
        self.service_name = service_name
        self.queue = dlq_queue(service_name)
        self.publisher = Publisher(amqp_uri, use_confirms=True, serializer="json", declare=[self.queue])

    def publish(self, source_service, event_type, handler, payload, error, attempts, reason="retries_exhausted"):
        record = {
            "letter_id": uuid.uuid4().hex, "service": self.service_name,
            "source_service": source_service, "event_type": event_type, "handler": handler,
            "queue": handler_queue_name(source_service, event_type, self.service_name, handler),
            "payload": payload, "attempts": attempts, "reason": reason,
            "error": redact_id_numbers(error),
            "dead_lettered_at": datetime.now(timezone.utc).isoformat(),
        }
        self.publisher.publish(record, exchange=Exchange(""), routing_key=self.queue.name)
        metrics.DEAD_LETTERS.labels(self.service_name, event_type, reason).inc()


class DeadLetters(DependencyProvider):
    """Declares ``dlq.<service>`` at start and gives handlers a publisher for it."""

    def setup(self):
        self.publisher = DeadLetterPublisher(cfg.setting(self.container.config, "AMQP_URI"),
                                             self.container.service_name)
        # Declared at setup, so ops see the queue before anything is dead-lettered and a stale classic
        # queue stops the service with a clear message.
        declare(cfg.setting(self.container.config, "AMQP_URI"), self.publisher.queue)

    def get_dependency(self, worker_ctx):
        return self.publisher


class ReliableEventHandler(EventHandler):
    """Nameko's EventHandler on a durable quorum queue with a delivery limit into ``dlq.<service>``."""

    def __init__(self, source_service, event_type, handler_type=SERVICE_POOL, reliable_delivery=True, **kwargs):
        if handler_type != SERVICE_POOL or not reliable_delivery:
            raise ValueError("reliable_event_handler needs a SERVICE_POOL handler with reliable delivery")
        super().__init__(source_service, event_type, handler_type=handler_type, reliable_delivery=True, **kwargs)

    def setup(self):
        super().setup()  # builds self.queue (name, exchange, binding) and registers with the QueueConsumer
        service = self.container.service_name
        # quorum queues must be durable and neither exclusive nor auto-delete: Nameko's SERVICE_POOL queue is
        self.queue = Queue(self.queue.name, exchange=self.queue.exchange, routing_key=self.queue.routing_key,
                           durable=True, auto_delete=False, exclusive=False,
                           queue_arguments=handler_queue_arguments(service))
        declare(cfg.setting(self.container.config, "AMQP_URI"), self.queue)


def _backoff_from_config(config, default):
    text = cfg.setting(config, "EVENT_RETRY_BACKOFF", None)
    if not text:
        return tuple(default)
    return tuple(float(part) for part in str(text).split(",") if part.strip())


def reliable_event_handler(source_service, event_type, backoff=DEFAULT_BACKOFF, permanent=(ValidationError,),
                           transient=(ConnectionFailure,), **kwargs):
    """``@event_handler`` with retries and a dead-letter queue (see the module docstring).

    The service needs a ``DeadLetters()`` dependency (any attribute name). ``EVENT_RETRY_BACKOFF`` in the
    config ("0.5,1,2,4") overrides ``backoff``: len(backoff) + 1 attempts. Exceptions in ``permanent`` are
    dead-lettered at once (reason ``rejected``): retrying a malformed event cannot help. Exceptions in
    ``transient`` still failing after the last attempt requeue the message instead (an outage, not a bad event).
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
                    rejected = isinstance(exc, permanent)
                    if attempt == attempts and isinstance(exc, transient):
                        log.warning("%s on %s: %s after %d attempts; requeued to wait for it", fn.__name__,
                                    event_type, type(exc).__name__, attempts)
                        raise
                    if rejected or attempt == attempts:
                        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                        log.error("%s.%s %s on %s; dead-lettering: %s", type(self).__name__, fn.__name__,
                                  "rejected the event" if rejected else f"failed {attempts} times", event_type,
                                  redact_id_numbers(error))
                        _dead_letters(self).publish(source_service, event_type, fn.__name__, payload,
                                                    error + "\n" + traceback.format_exc(limit=5), attempt,
                                                    reason="rejected" if rejected else "retries_exhausted")
                        return None
                    log.warning("%s on %s failed (attempt %d/%d): %s; retrying in %ss", fn.__name__,
                                event_type, attempt, attempts, type(exc).__name__, delays[attempt - 1])
                    eventlet.sleep(delays[attempt - 1])

        return ReliableEventHandler.decorator(source_service, event_type, **kwargs)(wrapper)

    return decorate


def _dead_letters(service):
    for name in dir(type(service)):
        if isinstance(getattr(type(service), name, None), DeadLetters):
            return getattr(service, name)
    raise RuntimeError(f"{type(service).__name__} uses reliable_event_handler without a DeadLetters() dependency")


# ---- ops tools (servicekit.dlq) ---------------------------------------------------------------------
def _letter_from_message(message, service_name):
    """Our own record, or a message the broker dead-lettered itself (delivery limit): made to look alike."""
    body = message.body
    data = json.loads(body) if isinstance(body, (str, bytes)) else body
    if isinstance(data, dict) and "letter_id" in data and "payload" in data:
        return data
    death = ((message.headers or {}).get("x-death") or [{}])[0]
    exchange, queue = death.get("exchange", ""), death.get("queue", "")
    return {
        "letter_id": f"broker-{message.properties.get('message_id') or uuid.uuid5(uuid.NAMESPACE_OID, str(body))}",
        "service": service_name, "source_service": exchange[:-len(".events")] if exchange.endswith(".events")
        else exchange, "event_type": (death.get("routing-keys") or [""])[0],
        "handler": queue.rsplit(".", 1)[-1] if queue else None, "queue": queue, "payload": data,
        "attempts": None, "reason": death.get("reason", "broker"),
        "error": f"dead-lettered by RabbitMQ ({death.get('reason')}): the message was delivered "
                 f"{DELIVERY_LIMIT}+ times without being settled (worker crashes or a failing dead-letter publish)",
        "dead_lettered_at": death["time"].isoformat() if hasattr(death.get("time"), "isoformat") else None,
    }


def _with_letters(amqp_uri, service_name, limit, visit):
    """Take up to ``limit`` letters off ``dlq.<service>`` unacked; ``visit(letter)`` True acks (removes) one,
    everything else goes back. Returns the letters seen, in queue order."""
    seen = []
    with Connection(amqp_uri) as connection:
        channel = connection.default_channel
        try:
            channel.queue_declare(dlq_name(service_name), passive=True)
        except NotFound:
            raise LookupError(f"no queue {dlq_name(service_name)} on this broker/vhost (has the service run "
                              f"against this AMQP_URI?)") from None
        queue = dlq_queue(service_name)(channel)
        held = []
        try:
            for _ in range(limit):
                message = queue.get(no_ack=False)
                if message is None:
                    break
                letter = _letter_from_message(message, service_name)
                seen.append(letter)
                if visit(letter):
                    message.ack()
                else:
                    held.append(message)
        finally:
            for message in held:
                message.requeue()
    return seen


def read_dead_letters(amqp_uri, service_name, limit=100):
    """The dead letters waiting in ``dlq.<service>`` (left in place)."""
    return _with_letters(amqp_uri, service_name, limit, lambda letter: False)


def replay_dead_letters(amqp_uri, service_name, letter_ids=None, limit=1000):
    """Publish the chosen letters' events again to the handler queue they failed in (all when ``letter_ids``
    is None), each confirmed by the broker before its letter is removed. Returns the replayed letters."""
    wanted = None if letter_ids is None else set(letter_ids)
    replayed = []

    def visit(letter):
        if wanted is not None and letter["letter_id"] not in wanted:
            return False
        replay_dead_letter(amqp_uri, letter)
        replayed.append(letter)
        return True

    _with_letters(amqp_uri, service_name, limit, visit)
    return replayed


def discard_dead_letters(amqp_uri, service_name, letter_ids, limit=1000):
    """Remove the chosen letters for good (an event ops decided must not be applied). Returns them."""
    wanted = set(letter_ids)
    return [letter for letter in _with_letters(amqp_uri, service_name, limit,
                                               lambda letter: letter["letter_id"] in wanted)
            if letter["letter_id"] in wanted]


def replay_dead_letter(amqp_uri, letter):
    """Publish one letter's event again: to its handler's queue only (other consumers of the event already
    had it), mandatory and confirmed, so a queue that no longer exists is an error, not a silent drop."""
    if letter.get("queue"):
        exchange, routing_key = Exchange(""), letter["queue"]
        declare = []
    else:  # a letter from an older version: back through the source exchange to every subscriber
        exchange, routing_key = get_event_exchange(letter["source_service"], {}), letter["event_type"]
        declare = [exchange]
    Publisher(amqp_uri, use_confirms=True, mandatory=True, serializer="json", declare=declare).publish(
        letter["payload"], exchange=exchange, routing_key=routing_key,
        headers={"x-replayed-letter": letter["letter_id"]} if letter.get("letter_id") else {})
