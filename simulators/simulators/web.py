"""A tiny JSON web toolkit for the simulators (plain Werkzeug, no Nameko: they stand for outside systems)."""
import json
import threading

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response


def reply(payload, status=200):
    return Response(json.dumps(payload, ensure_ascii=False, default=str), status=status,
                    content_type="application/json; charset=utf-8")


def fail(status, code, message, details=None):
    return reply({"error": {"code": code, "message": message, "details": details or {}}}, status)


class BadInput(Exception):
    def __init__(self, message, details=None):
        super().__init__(message)
        self.message, self.details = message, details or {}


def json_body(request):
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError:
        raise BadInput("body is not JSON") from None
    if not isinstance(data, dict):
        raise BadInput("body must be a JSON object")
    return data


def require(data, *names):
    missing = {n: ["required"] for n in names if not isinstance(data.get(n), str) or not data.get(n)}
    if missing:
        raise BadInput("missing fields", missing)
    return [data[n] for n in names]


class SimApp:
    """Collects routes from simulator modules: each module has ``routes(app)`` that calls ``app.route``."""

    def __init__(self):
        self.url_map, self.handlers = Map(strict_slashes=False), {}
        self.lock = threading.RLock()  # simulators keep state in memory; one lock keeps it consistent

    def route(self, path, methods, handler):
        endpoint = f"{handler.__module__}.{handler.__qualname__}:{path}:{','.join(methods)}"
        self.url_map.add(Rule(path, methods=methods, endpoint=endpoint))
        self.handlers[endpoint] = handler

    def __call__(self, environ, start_response):
        request = Request(environ)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, values = adapter.match()
            with self.lock:
                response = self.handlers[endpoint](request, **values)
        except BadInput as exc:
            response = fail(400, "VALIDATION_ERROR", exc.message, exc.details)
        except HTTPException as exc:
            response = fail(exc.code, "NOT_FOUND" if exc.code in (404, 405) else "VALIDATION_ERROR", exc.name)
        return response(environ, start_response)
