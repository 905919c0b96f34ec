"""The HTTP edge: an @http entrypoint that speaks the API.md error envelope everywhere.

``endpoint(...)`` wraps a handler with authentication, marshmallow validation of the body and query, JSON
rendering and an RPC timeout, and records what it did so that ``openapi.py`` can publish it. Anything that
goes wrong becomes ``{"error": {"code", "message", "details"}}``: never a stack trace, never an HTML page.
"""
import json
import logging
from dataclasses import dataclass, field
from functools import wraps

import eventlet
from marshmallow import ValidationError
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from servicekit.context import REQUEST_ID_KEY, new_request_id
from servicekit.errors import ERROR_CATALOG, AppError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
RPC_TIMEOUT_SECONDS = 15


def json_response(payload, status=200, headers=None):
    return Response(json.dumps(payload, ensure_ascii=False), status=status, headers=headers,
                    content_type="application/json; charset=utf-8")


def error_response(code, message=None, details=None, status=None):
    default_status, default_message = ERROR_CATALOG[code]
    body = {"error": {"code": code, "message": message or default_message, "details": details or {}}}
    return json_response(body, status or default_status)


def response_for_exception(exc):
    if isinstance(exc, AppError):
        return error_response(exc.code, exc.message, exc.details)
    if isinstance(exc, ValidationError):
        return error_response("VALIDATION_ERROR", details=exc.messages)
    if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
        # A method a path does not have is an unknown resource too: the contract's NOT_FOUND, with its 404.
        return error_response("NOT_FOUND" if exc.code in (404, 405) else "VALIDATION_ERROR")
    log.error("unhandled error at the gateway: %s", type(exc).__name__, exc_info=exc)
    return error_response("INTERNAL_ERROR")


def _safe_request_id(value):
    return value if value and len(value) <= 64 and value.replace("-", "").isalnum() else new_request_id()


class EnvelopeWsgiMiddleware:
    """Requests that match no route (404/405) never reach a handler: answer them in the envelope too."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        adapter = self.app.url_map.bind_to_environ(environ)
        try:
            adapter.match()
        except HTTPException as exc:
            return response_for_exception(exc)(environ, start_response)
        return self.app(environ, start_response)


class ApiWebServer(WebServer):
    def get_wsgi_app(self):
        return EnvelopeWsgiMiddleware(super().get_wsgi_app())

    def context_data_from_headers(self, request):
        return {REQUEST_ID_KEY: request.environ[REQUEST_ID_ENVIRON]}


REQUEST_ID_ENVIRON = "sitax.request_id"


class ApiEndpoint(HttpRequestHandler):
    """Request id in (``X-Request-Id`` or a new one), through Nameko context data to every service, and out."""

    server = ApiWebServer()

    def handle_request(self, request):
        request_id = _safe_request_id(request.headers.get("X-Request-Id"))
        request.environ[REQUEST_ID_ENVIRON] = request_id
        response = super().handle_request(request)
        response.headers["X-Request-Id"] = request_id
        return response

    def response_from_exception(self, exc):
        return response_for_exception(exc)


api_http = ApiEndpoint.decorator


# ---- declarative endpoints ---------------------------------------------------------------------
@dataclass
class RouteSpec:
    method: str
    path: str
    summary: str
    tag: str
    auth: str | None
    body: object = None
    query: object = None
    response: object = None
    status: int = 200
    errors: tuple = ()
    content_type: str = "application/json"
    description: str = ""
    extra: dict = field(default_factory=dict)


ROUTES: list[RouteSpec] = []


def bearer_token(request: Request):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def load_json_body(request: Request, schema):
    if request.content_length and request.content_length > MAX_BODY_BYTES:
        raise AppError("VALIDATION_ERROR", "请求内容过大", {"body": ["请求内容过大"]})
    raw = request.get_data(cache=True)
    if not raw:
        data = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[…" nested too deep
            raise AppError("VALIDATION_ERROR", "请求内容不是有效的JSON", {"body": ["不是有效的JSON"]}) from None
    if not isinstance(data, dict):
        raise AppError("VALIDATION_ERROR", "请求内容应为JSON对象", {"body": ["应为JSON对象"]})
    return schema.load(data)


def call(method, *args, **kwargs):
    """One RPC with a deadline: a stuck service becomes SERVICE_UNAVAILABLE instead of a hung request."""
    try:
        with eventlet.Timeout(RPC_TIMEOUT_SECONDS):
            return method(*args, **kwargs)
    except eventlet.Timeout:
        log.error("RPC timed out")
        raise AppError("SERVICE_UNAVAILABLE") from None


def endpoint(method, path, *, summary, tag, auth="payer", body=None, query=None, response=None, status=200,
             errors=(), content_type="application/json", description=""):
    """Declare a gateway endpoint. ``auth`` is "payer", "ops" or None.

    The handler is called as ``handler(self, request, principal=..., body=..., query=..., **path_values)`` with
    only the keywords that apply, and returns a dict (rendered as JSON with ``status``) or a Response.
    """
    spec = RouteSpec(method, path, summary, tag, auth, body, query, response, status, tuple(errors), content_type,
                     description)
    ROUTES.append(spec)

    def decorate(handler):
        @wraps(handler)
        def run(self, request, **path_values):
            kwargs = dict(path_values)
            if auth == "payer":
                kwargs["principal"] = self.authenticate_payer(request)
            elif auth == "ops":
                self.authenticate_ops(request)
            if body is not None:
                kwargs["body"] = load_json_body(request, body)
            if query is not None:
                kwargs["query"] = query.load(request.args.to_dict())
            result = handler(self, request, **kwargs)
            if isinstance(result, Response):
                return result
            if result is None:
                return Response(status=status)
            return json_response(result, status)

        werkzeug_path = path.replace("{", "<").replace("}", ">")
        return api_http(method, werkzeug_path, expected_exceptions=(AppError, ValidationError))(run)

    return decorate
