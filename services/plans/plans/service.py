"""plans: a running member of the system that answers readiness checks; its behaviour arrives with its issue."""
from nameko.rpc import rpc


class PlansService:
    name = "plans"

    @rpc
    def ping(self):
        return {"service": self.name, "ok": True}
