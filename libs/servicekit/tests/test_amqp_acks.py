from nameko.messaging import QueueConsumer

import servicekit.runtime  # noqa: F401  (installs the tolerant acks, as every service does)


class DeadChannelMessage:
    class channel:
        connection = object()

    def ack(self):
        raise ConnectionResetError(104, "Connection reset by peer")

    def requeue(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reset_connection_under_an_ack_or_requeue_does_not_escape():
    consumer = QueueConsumer.__new__(QueueConsumer)
    consumer.ack_message(DeadChannelMessage())
    consumer.requeue_message(DeadChannelMessage())
