"""certs: a running member of the system that answers readiness checks; its behaviour arrives with its issue."""
from nameko.rpc import rpc


class CertsService:
    name = "certs"

    @rpc
    def ping(self):
        return {"service": self.name, "ok": True}
