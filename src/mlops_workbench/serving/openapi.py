"""The OpenAPI description of what the model server and the router really do.

The prediction paths are answered by the ASGI hot path, not by FastAPI's routing, so their operations
are written here from the same rules :mod:`mlops_workbench.serving.payloads` enforces: a schema-valid
body is scored, anything else gets the documented 4xx. The router documents the same operations for the
paths it forwards, and its own endpoints (:func:`router_document`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlops_workbench.serving import paths, payloads
from mlops_workbench.serving.admin import URL_PATTERN, VERSION_PATTERN

JSON = "application/json"
METRICS_MEDIA = "text/plain"
ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_NUMBER = {"type": "number", "minimum": -payloads.MAX_ABS_VALUE, "maximum": payloads.MAX_ABS_VALUE}
BEARER = {
    "AdminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "the state folder's admin token (<state folder>/admin-token)",
    }
}


def error(description: str) -> dict[str, Any]:
    """A documented error answer: a JSON object with an ``error`` message."""
    return {"description": description, "content": {JSON: {"schema": ERROR}}}


def json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


BAD_BODY = {
    "400": error("The body is not a JSON object the model can score; the message names the problem."),
    "413": error(f"The body is larger than {payloads.MAX_BODY_BYTES} bytes."),
    "415": error("The content type is not application/json."),
}
FAULT = {"500": error("Only an injected fault (see /admin/faults) answers 500.")}
METRICS = {
    "200": {"description": "Prometheus text exposition.", "content": {METRICS_MEDIA: {"schema": {"type": "string"}}}}
}
UNAUTHORIZED = {"401": error("The bearer token is missing or wrong.")}


def _rows(features: Sequence[str]) -> dict[str, Any]:
    n = len(features)
    row = {
        "type": "array",
        "items": _NUMBER,
        "minItems": n,
        "maxItems": n,
        "description": f"one value per feature, in the order {list(features)}",
    }
    return {"type": "array", "items": row, "minItems": 1}


def _records(features: Sequence[str]) -> dict[str, Any]:
    record = {
        "type": "object",
        "properties": {f: _NUMBER for f in features},
        "required": list(features),
        "additionalProperties": False,
    }
    return {"type": "array", "items": record, "minItems": 1}


def _exactly_one(options: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An object with exactly one of the fields of ``options`` (others are ignored, as the server does)."""
    return {
        "oneOf": [
            {
                "type": "object",
                "properties": {key: schema},
                "required": [key],
                "not": {"anyOf": [{"required": [other]} for other in options if other != key]},
            }
            for key, schema in options.items()
        ]
    }


def predict_body(features: Sequence[str]) -> dict[str, Any]:
    return _exactly_one({"instances": _rows(features), "records": _records(features)})


def invocations_body(features: Sequence[str]) -> dict[str, Any]:
    n = len(features)
    split = {
        "type": "object",
        "required": ["data"],
        "properties": {
            "columns": {
                "type": "array",
                "items": {"type": "string", "enum": list(features)},
                "minItems": n,
                "maxItems": n,
                "uniqueItems": True,
            },
            "data": _rows(features),
        },
    }
    rows_or_records = {"oneOf": [_rows(features), _records(features)]}
    return _exactly_one(
        {
            "dataframe_split": split,
            "dataframe_records": _records(features),
            "instances": rows_or_records,
            "inputs": rows_or_records,
        }
    )


def prediction_paths(features: Sequence[str]) -> dict[str, Any]:
    """``/predict`` and ``/invocations`` for a model with these input ``features``."""
    labels = {"type": "array", "items": {}}
    predict_answer = {
        "type": "object",
        "required": ["predictions", "probabilities", "classes", "version"],
        "properties": {
            "predictions": labels,
            "probabilities": {"type": "array"},
            "classes": {"type": "array"},
            "version": {"type": "string"},
            "request_id": {"type": "string", "description": "the id the predictions were logged under"},
        },
    }
    invocations_answer = {"type": "object", "required": ["predictions"], "properties": {"predictions": labels}}

    request_id = {"description": "The id the predictions were logged under.", "schema": {"type": "string"}}
    named = {
        "name": paths.REQUEST_ID_HEADER,
        "in": "header",
        "required": False,
        "description": "Your own id for this request (up to 64 letters, digits, '.', '_', ':' or '-'); "
        "the server makes one otherwise.",
        "schema": {"type": "string"},
    }
    probe = {
        "name": paths.PROBE_HEADER,
        "in": "header",
        "required": False,
        "description": "Present on the workbench's own measurement requests: answered as usual, but the rows are "
        "not written to the prediction log (drift and A/B counts see only users' traffic).",
        "schema": {"type": "string"},
    }

    def operation(summary: str, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        ok = json_answer("The predictions.", answer) | {"headers": {paths.REQUEST_ID_HEADER: request_id}}
        return {
            "post": {
                "summary": summary,
                "parameters": [named, probe],
                "requestBody": {"required": True, "content": {JSON: {"schema": body}}},
                "responses": {"200": ok, **BAD_BODY, **FAULT},
            }
        }

    return {
        paths.PREDICT: operation(
            "Predict classes and probabilities for rows or records.", predict_body(features), predict_answer
        ),
        paths.INVOCATIONS: operation(
            "Score a payload of MLflow's scoring protocol.", invocations_body(features), invocations_answer
        ),
    }


def router_document(upstream: dict[str, Any] | None) -> dict[str, Any]:
    """The router's own API, plus the paths it forwards as the stable server's document describes them
    (``upstream``; when the stable server cannot be asked, those paths are described loosely)."""
    weights = {
        "type": "object",
        "required": ["canary", "stable"],
        "properties": {"canary": {"type": "number"}, "stable": {"type": "number"}, "upstreams": {"type": "object"}},
    }
    weight_body = {
        "type": "object",
        "required": ["canary"],
        "properties": {"canary": {"type": "number", "minimum": 0, "maximum": 100}},
    }
    admin: list[dict[str, list[str]]] = [{"AdminToken": []}]
    endpoints: dict[str, Any] = {
        paths.HEALTH: {
            "get": {
                "summary": "Liveness and the current weights.",
                "responses": {"200": json_answer("The router is up.", weights)},
            }
        },
        paths.METRICS: {"get": {"summary": "Prometheus metrics of the router.", "responses": METRICS}},
        paths.WEIGHTS: {
            "get": {
                "summary": "The current canary weight.",
                "security": admin,
                "responses": {"200": json_answer("The weights.", weights), **UNAUTHORIZED},
            },
            "put": {
                "summary": "Set the canary's share of traffic (percent).",
                "security": admin,
                "requestBody": {"required": True, "content": {JSON: {"schema": weight_body}}},
                "responses": {
                    "200": json_answer("The new weights.", weights),
                    "400": error('The body is not {"canary": <0..100>}.'),
                    "413": error("The body is too large."),
                    "415": error("Not JSON."),
                    **UNAUTHORIZED,
                },
            },
        },
    }
    endpoints[paths.SHADOW] = _shadow_endpoint(admin)
    forwarded = {path: (upstream or {}).get("paths", {}).get(path) for path in FORWARDED}
    loose = {"description": "Forwarded to the stable or canary model server.", "content": {JSON: {"schema": {}}}}
    for path, method in FORWARDED.items():
        item = forwarded[path] or {method: {"responses": {"200": loose, **(BAD_BODY if method == "post" else {})}}}
        if method == "post" and not forwarded[path]:
            item[method]["requestBody"] = {"required": True, "content": {JSON: {"schema": {"type": "object"}}}}
        item[method]["responses"].update(UPSTREAM_DOWN)
        endpoints[path] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "mlops-workbench router", "version": "1"},
        "paths": endpoints,
        "components": {
            "securitySchemes": BEARER,
            **({"schemas": upstream["components"].get("schemas", {})} if upstream and "components" in upstream else {}),
        },
    }


def _shadow_endpoint(admin: list[dict[str, Any]]) -> dict[str, Any]:
    """``/admin/shadow``: read, set or clear the shadow upstream (the patterns :mod:`mlops_workbench.serving.admin`
    checks)."""
    target = {
        "type": "object",
        "required": ["url", "version"],
        "properties": {
            "url": {"type": "string", "pattern": URL_PATTERN},
            "version": {"type": "string", "pattern": VERSION_PATTERN},
        },
        "additionalProperties": False,
    }
    state = {
        "type": "object",
        "required": ["shadow"],
        "properties": {"shadow": {"anyOf": [target, {"type": "null"}]}},
    }
    answer = {"200": json_answer("The shadow upstream now (null: none).", state), **UNAUTHORIZED}
    return {
        "get": {"summary": "The shadow upstream.", "security": admin, "responses": answer},
        "put": {
            "summary": "Mirror a copy of every prediction request to this model server (answers discarded).",
            "security": admin,
            "requestBody": {"required": True, "content": {JSON: {"schema": target}}},
            "responses": {
                **answer,
                "400": error("The body is not a shadow upstream; the message names each bad field."),
                "413": error("The body is too large."),
                "415": error("Not JSON."),
            },
        },
        "delete": {"summary": "Stop mirroring.", "security": admin, "responses": answer},
    }


FORWARDED = {paths.PREDICT: "post", paths.INVOCATIONS: "post", paths.VERSION: "get"}
"""The only paths the router forwards, with the one method each serves."""
UPSTREAM_DOWN = {"502": error("No upstream answered."), "504": error("The upstream did not answer in time.")}
