"""缴费方式 (channels), 立即缴费 (a payment with a channel), 第三方支付情况, and the channels' notifications."""
import json
from urllib.parse import parse_qsl

from gateway import orders_schemas as s
from gateway.http import MAX_BODY_BYTES, call, endpoint


def notification_fields(request):
    """The notification as a flat dict of strings, form-encoded (as ACP sends it) or JSON. Anything else
    becomes an empty or partial dict, which the signature check then refuses: nothing is trusted before it."""
    if request.content_length and request.content_length > MAX_BODY_BYTES:
        return {}
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    if request.mimetype == "application/json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            return {}
        return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
    try:
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=64))
    except ValueError:
        return {}


class PaymentsRoutes:
    @endpoint("GET", "/api/v1/channels", summary="Payment channels for the payer's region and type (缴费方式)",
              tag="payments", response=s.ChannelsResponse())
    def channels(self, request, principal):
        answer = call(self.payment_gateway_rpc.list_channels, principal["id_number"], principal["insurance_type"])
        return {"channels": answer["channels"]}

    @endpoint("POST", "/api/v1/orders/{order_id}/payments", summary="Pay an order with a channel (立即缴费)",
              tag="payments", body=s.CreatePaymentRequest(), response=s.PaymentResponse(), status=201,
              errors=("NOT_FOUND", "CONFLICT", "PAYMENT_WINDOW_CLOSED", "SERVICE_UNAVAILABLE"),
              description="Opens the payment with the channel and returns its pay page. One active payment per "
                          "order: a second one, or paying an order that is not pending, is CONFLICT.")
    def create_payment(self, request, principal, body, order_id):
        return call(self.payment_gateway_rpc.create_payment, order_id, principal["payer_id"], body["channel"])

    @endpoint("GET", "/api/v1/me/payments", summary="第三方支付情况: payments by payment date", tag="payments",
              query=s.PaymentsQuery(), response=s.PaymentsResponse(),
              description="The session payer's payments whose payment date (Asia/Shanghai) lies in "
                          "[paid_from, paid_to]; an empty list carries message 未查询到缴费记录.")
    def my_payments(self, request, principal, query):
        return call(self.payment_gateway_rpc.payments_for_payer, principal["payer_id"], query["paid_from"],
                    query["paid_to"])

    @endpoint("POST", "/api/v1/notify/{channel}", summary="A payment channel's asynchronous result", tag="channels",
              auth=None, response=s.NotificationAck(), errors=("SIGNATURE_INVALID", "NOT_FOUND"),
              description="Form-encoded as UnionPay ACP sends it (JSON accepted), signed by the channel: sorted "
                          "k=v&…, SHA-256, RSA, base64 in `signature`. The signature is verified before anything "
                          "else; 200 only once the result is durably recorded; duplicates answer 200.")
    def notify(self, request, channel):
        answer = call(self.payment_gateway_rpc.handle_notification, channel, notification_fields(request))
        return {"result": answer["status"]}
