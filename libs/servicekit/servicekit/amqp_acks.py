"""Acks and requeues that find the broker connection gone must not kill the service.

Nameko 2.14's QueueConsumer already means to ignore a connection that closes under an ack ("the message will
already have been reclaimed by the broker"), but it catches only amqp's ConnectionError; a broker restart shows
up as the socket's ConnectionResetError / BrokenPipeError (OSError), which escapes into the worker's greenthread
and kills the whole container. The broker redelivers every unacknowledged message and our handlers are
idempotent, so ignoring it here is what Nameko intended. Installed once by servicekit.runtime.
"""
import logging

from nameko.messaging import QueueConsumer

log = logging.getLogger(__name__)


def _tolerant(settle):
    def settle_or_leave_to_broker(self, message):
        try:
            settle(self, message)
        except OSError as exc:  # the connection died under us; the broker requeues the message itself
            log.warning("broker connection lost while settling a message (%s); it will be redelivered",
                        type(exc).__name__)

    settle_or_leave_to_broker.sitax_tolerant = True
    return settle_or_leave_to_broker


def install():
    for name in ("ack_message", "requeue_message"):
        method = getattr(QueueConsumer, name)
        if not getattr(method, "sitax_tolerant", False):
            setattr(QueueConsumer, name, _tolerant(method))
