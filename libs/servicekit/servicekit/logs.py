"""JSON log lines with service name and request id; ID numbers are masked whatever the message says.

Passwords and SMS codes are never passed to a logger in the first place; the ID-number redaction is a safety
net for messages that quote user input (validation errors, adapters' answers).
"""
import json
import logging
import os
import sys
from datetime import datetime, timezone

from servicekit.context import current_request_id
from servicekit.pii import redact_id_numbers


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": os.environ.get("SERVICE_NAME", "-"),
            "request_id": current_request_id(),
            "logger": record.name,
            "msg": redact_id_numbers(record.getMessage()),
        }
        if record.exc_info:
            line["exc"] = redact_id_numbers(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def configure(level=None):
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))
    # kombu/amqp chatter at INFO is noise for ops
    for noisy in ("kombu", "amqp", "pymongo", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
