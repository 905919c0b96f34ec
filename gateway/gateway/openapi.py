"""/openapi.json, generated from the endpoint declarations and their marshmallow schemas."""
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from servicekit.errors import ERROR_CATALOG

from gateway.http import ROUTES
from gateway.schemas import ErrorResponse


def _schema_name(schema):
    return type(schema).__name__ if not isinstance(schema, type) else schema.__name__


def build_spec():
    spec = APISpec(title="社保费掌上办 API", version="1.0.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Public HTTP contract of the 掌上办 back end (see API.md). Errors always use "
                                        "the ErrorResponse envelope; codes: " + ", ".join(ERROR_CATALOG)})
    spec.components.security_scheme("payerToken", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("opsToken", {"type": "http", "scheme": "bearer"})
    spec.components.schema("ErrorResponse", schema=ErrorResponse)
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    paths = {}
    for route in ROUTES:
        operation = {"summary": route.summary, "tags": [route.tag], "responses": {}}
        if route.description:
            operation["description"] = route.description
        if route.auth:
            operation["security"] = [{"payerToken" if route.auth == "payer" else "opsToken": []}]
        parameters = [{"in": "path", "name": part[1:-1], "required": True, "schema": {"type": "string"}}
                      for part in route.path.split("/") if part.startswith("{")]
        if route.query is not None:
            parameters.append({"in": "query", "schema": route.query})
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
        success = {"description": "success"}
        if route.response is not None:
            success["content"] = {route.content_type: {"schema": route.response}}
        elif route.content_type != "application/json":
            success["content"] = {route.content_type: {"schema": {"type": "string", "format": "binary"}}}
        operation["responses"][str(route.status)] = success
        codes = set(route.errors) | {"VALIDATION_ERROR"} if (route.body or route.query) else set(route.errors)
        if route.auth:
            codes.add("UNAUTHENTICATED")
        for status in sorted({ERROR_CATALOG[c][0] for c in codes}):
            names = sorted(c for c in codes if ERROR_CATALOG[c][0] == status)
            operation["responses"][str(status)] = {"description": " | ".join(names),
                                                   "content": {"application/json": {"schema": error_ref}}}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
