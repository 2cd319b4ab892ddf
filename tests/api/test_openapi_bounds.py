"""The OpenAPI document states the bounds the API enforces (schemathesis holds it to them)."""

from __future__ import annotations

from typing import Any

from app.api.endpoint import openapi_document
from app.domain.bounds import MAX_ID
from app.main import api_router

DOCUMENT = openapi_document(api_router().endpoints, title="Takt API", version="test")


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op) for path, ops in DOCUMENT["paths"].items() for method, op in ops.items()
    ]


def test_every_id_in_a_path_is_bounded() -> None:
    ids = [
        parameter["schema"]
        for _, path, op in operations()
        for parameter in op["parameters"]
        if parameter["in"] == "path" and parameter["name"].endswith("_id")
    ]
    assert ids
    for schema in ids:
        assert schema in (
            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        )


def test_every_operation_with_a_path_id_or_a_body_documents_its_refusals() -> None:
    for method, path, op in operations():
        if "{" in path:
            assert "404" in op["responses"], (method, path)
        if "requestBody" in op:
            assert {"400", "413", "415", "422"} <= op["responses"].keys(), (method, path)


def test_patch_refuses_null_where_a_value_is_required() -> None:
    patch = DOCUMENT["paths"]["/api/v1/tasks/{task_id}"]["patch"]
    schema = patch["requestBody"]["content"]["application/json"]["schema"]["properties"]
    for required in ("name", "duration_minutes", "min_level", "predecessors", "sequence"):
        assert "null" not in str(schema[required]), required
        assert "default" not in schema[required], required
    assert {"type": "null"} in schema["required_skill"]["anyOf"]


def test_if_match_and_shift_times_say_their_format() -> None:
    put = DOCUMENT["paths"]["/api/v1/tasks/{task_id}/assignment"]["put"]
    (if_match,) = [p for p in put["parameters"] if p["name"] == "If-Match"]
    assert if_match["required"] and if_match["schema"]["pattern"]
    shift = DOCUMENT["components"]["schemas"]["ShiftIn"]["properties"]["start"]
    assert shift["type"] == "string" and "pattern" in shift
