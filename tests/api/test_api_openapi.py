"""/v1/openapi.json describes exactly the routes the app serves (a missing route fails this test)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _served_operations(app) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - IGNORED_METHODS:
            operations.add((path, method.lower()))
    return operations


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_openapi_describes_every_route_and_nothing_else(api):
    spec = api.client.get("/v1/openapi.json").json
    described = {(path, method) for path, operations in spec["paths"].items() for method in operations}
    served = _served_operations(api.app)
    assert served - described == set(), "routes missing from the OpenAPI document"
    assert described - served == set(), "OpenAPI describes routes the app does not serve"
    assert len(served) >= 9


def test_openapi_document_is_well_formed(api):
    spec = api.client.get("/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    schemas = spec["components"]["schemas"]
    refs = list(_refs(spec))
    assert refs and all(ref.removeprefix("#/components/schemas/") in schemas for ref in refs)
    assert set(schemas["Params"]["properties"]) >= {"size", "iterations", "backbone", "style_weight"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], f"{method} {path} has no responses"
            for name in re.findall(r"{(\w+)}", path):
                assert any(p["name"] == name and p["in"] == "path" for p in operation["parameters"]), (path, name)
    post = spec["paths"]["/v1/jobs"]["post"]["responses"]
    assert {"202", "400", "413", "415", "422", "503"} <= set(post)
