"""The reference mobile H5 front-end (static files, no build step) served at ``/``."""
from pathlib import Path

from werkzeug.wrappers import Response

from servicekit.errors import AppError

from gateway.http import endpoint

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
# Only files that ship with the app are served, by exact name: no path ever reaches the file system.
STATIC_FILES = {p.name: p for p in STATIC_DIR.iterdir() if p.suffix in CONTENT_TYPES}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def static_response(name):
    path = STATIC_FILES.get(name)
    if path is None:
        raise AppError("NOT_FOUND")
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return Response(path.read_bytes(), content_type=CONTENT_TYPES[path.suffix], headers=headers)


class WebRoutes:
    @endpoint("GET", "/", summary="The reference mobile H5 front-end", tag="web", auth=None,
              content_type="text/html")
    def web_app(self, request):
        return static_response("index.html")

    @endpoint("GET", "/app/{name}", summary="Static files of the H5 front-end", tag="web", auth=None,
              content_type="text/plain", errors=("NOT_FOUND",))
    def web_asset(self, request, name):
        return static_response(name)
