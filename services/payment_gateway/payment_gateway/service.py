"""payment_gateway: a running member of the system that answers readiness checks; its behaviour arrives with its issue."""
from nameko.rpc import rpc


class PaymentGatewayService:
    name = "payment_gateway"

    @rpc
    def ping(self):
        return {"service": self.name, "ok": True}
