"""SMS gateway simulator: takes messages like a real gateway, and lets tests read the newest one per phone."""
import re
from datetime import datetime, timezone

from simulators.web import BadInput, fail, json_body, reply, require

_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


class SmsGateway:
    def __init__(self):
        self.inbox = {}  # phone -> list of messages, newest last

    def routes(self, app):
        app.route("/sim/sms/messages", ["POST"], self.receive)
        app.route("/sim/sms/<phone>/latest", ["GET"], self.latest)

    def receive(self, request):
        phone, text = require(json_body(request), "phone", "text")
        if not re.fullmatch(r"1\d{10}", phone):
            raise BadInput("bad phone", {"phone": ["not a mobile number"]})
        match = _CODE.search(text)
        message = {"phone": phone, "text": text, "code": match.group(1) if match else None,
                   "sent_at": datetime.now(timezone.utc).isoformat()}
        self.inbox.setdefault(phone, []).append(message)
        return reply({"accepted": True}, 202)

    def latest(self, request, phone):
        messages = self.inbox.get(phone)
        if not messages:
            return fail(404, "NOT_FOUND", "no SMS sent to this phone")
        newest = messages[-1]
        return reply({"code": newest["code"], "text": newest["text"], "sent_at": newest["sent_at"]})
