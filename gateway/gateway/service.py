"""The gateway: one Nameko @http service on :8000 composed of per-area route mixins."""
import hmac

from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy

from servicekit import config as cfg
from servicekit.context import RequestContext
from servicekit.errors import AppError
from servicekit.runtime import ServiceRuntime

from gateway.http import bearer_token, call
from gateway.routes.certs_routes import CertsRoutes
from gateway.routes.health_routes import HealthRoutes
from gateway.routes.identity_routes import IdentityRoutes
from gateway.routes.ops_routes import OpsRoutes
from gateway.routes.orders_routes import OrdersRoutes
from gateway.routes.payments_routes import PaymentsRoutes
from gateway.routes.plans_routes import PlansRoutes
from gateway.routes.web_routes import WebRoutes
from gateway.throttle import FixedWindowLimiter


class GatewayService(HealthRoutes, IdentityRoutes, PlansRoutes, WebRoutes, OrdersRoutes, PaymentsRoutes,
                     CertsRoutes, OpsRoutes):
    name = "gateway"

    config = Config()
    runtime = ServiceRuntime()
    request_id = RequestContext()
    identity_rpc = RpcProxy("identity")
    plans_rpc = RpcProxy("plans")
    orders_rpc = RpcProxy("orders")
    payment_gateway_rpc = RpcProxy("payment_gateway")
    certs_rpc = RpcProxy("certs")

    _limiter = None

    def authenticate_payer(self, request):
        token = bearer_token(request)
        if not token:
            raise AppError("UNAUTHENTICATED", "请先登录")
        return call(self.identity_rpc.authenticate, token)

    def authenticate_ops(self, request):
        """The ops bearer token (OPS_TOKEN). Production never falls back to the dev token (servicekit.production
        also refuses a dev-looking one at start)."""
        token = bearer_token(request)
        production = str(cfg.setting(self.config, "APP_ENV", "development")).lower() == "production"
        expected = cfg.setting(self.config, "OPS_TOKEN", None if production else "dev-ops-token")
        if not token or not expected or not hmac.compare_digest(token.encode(), str(expected).encode()):
            raise AppError("UNAUTHENTICATED", "需要运维令牌")

    def throttle_client(self, request, bucket):
        if GatewayService._limiter is None:
            GatewayService._limiter = FixedWindowLimiter(cfg.integer(self.config, "CLIENT_RATE_LIMIT_PER_MINUTE", 120))
        if not self._limiter.allow((request.remote_addr, bucket)):
            raise AppError("RATE_LIMITED")
