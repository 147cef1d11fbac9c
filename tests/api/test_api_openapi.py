"""/v1/openapi.json describes exactly the routes the app serves (a missing route fails this test)."""

from __future__ import annotations

import io
import re

import pytest
from api_helpers import image_bytes

from api.openapi import SECURED_PREFIXES
from api.web import PAGE_PATHS

pytestmark = pytest.mark.integration

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _served_operations(app) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.rule in PAGE_PATHS:
            continue  # the studio's page and static files (api/web.py): pages, not API operations
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


def test_the_only_routes_left_out_are_the_studios_pages(api):
    page_rules = {rule.rule for rule in api.app.url_map.iter_rules() if rule.endpoint.startswith("web.")}
    assert page_rules == set(PAGE_PATHS)
    assert api.client.get("/").status_code == 200 and api.client.get("/static/js/app.js").status_code == 200


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


def _operations(spec):
    return {op["operationId"]: (path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()}


def test_creating_operations_link_to_the_routes_of_what_they_create(api):
    spec = api.client.get("/v1/openapi.json").json
    operations = _operations(spec)
    for creator, status, param, targets in [
        ("createJob", "202", "job_id", {"getJob", "cancelJob", "getJobResult"}),
        ("createBatch", "201", "batch_id", {"getBatch", "addBatchItems", "cancelBatch", "getBatchResults"}),
    ]:
        links = operations[creator][2]["responses"][status]["links"]
        assert {link["operationId"] for link in links.values()} == targets
        for link in links.values():
            assert link["parameters"] == {param: "$response.body#/id"}
            target_path = operations[link["operationId"]][0]
            assert "{" + param + "}" in target_path
    next_page = operations["listJobs"][2]["responses"]["200"]["links"]["NextPage"]
    assert next_page["parameters"] == {"cursor": "$response.body#/next_cursor"}


def test_required_parts_and_security_are_described(api):
    spec = api.client.get("/v1/openapi.json").json
    operations = _operations(spec)
    job_form = operations["createJob"][2]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(job_form["required"]) == {"content", "style"} and job_form["properties"]["style"]["minItems"] == 1
    batch_form = operations["createBatch"][2]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert batch_form["required"] == ["style"] and batch_form["properties"]["style"]["minItems"] == 1
    assert spec["components"]["securitySchemes"]["bearer"] == spec["components"]["securitySchemes"]["bearer"] | {
        "type": "http", "scheme": "bearer"}
    for operation_id, (path, _method, operation) in operations.items():
        secured = path.startswith(SECURED_PREFIXES)
        assert operation["security"] == ([{"bearer": []}] if secured else []), operation_id
        if secured:
            assert {"401", "503"} <= set(operation["responses"]), operation_id
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and operation_id != "readyz":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_query_bounds_are_the_ones_the_routes_enforce(api):
    spec = api.client.get("/v1/openapi.json").json
    operations = _operations(spec)
    params = {p["name"]: p["schema"] for p in operations["listJobs"][2]["parameters"]}
    limit = params["limit"]["anyOf"][0]
    assert api.client.get(f"/v1/jobs?limit={limit['maximum']}").status_code == 200
    assert api.client.get(f"/v1/jobs?limit={limit['maximum'] + 1}").json["error"]["code"] == "bad_limit"
    assert api.client.get(f"/v1/jobs?limit={limit['minimum'] - 1}").json["error"]["code"] == "bad_limit"
    assert api.client.get("/v1/jobs?limit=").status_code == 200  # described: empty means the default
    for status in params["status"]["enum"]:
        assert api.client.get(f"/v1/jobs?status={status}").status_code == 200, status
    assert api.client.get("/v1/jobs?status=nope").json["error"]["code"] == "bad_status"
    assert api.client.get("/v1/jobs?cursor=not-a-cursor").json["error"]["code"] == "bad_cursor"
    assert params["cursor"]["format"] == "atelier-cursor"

    batch = {p["name"]: p["schema"] for p in operations["getBatch"][2]["parameters"] if p["in"] == "query"}
    offset, items_limit = batch["offset"]["anyOf"][0], batch["limit"]["anyOf"][0]
    created = api.client.post("/v1/batches", data={"style": (io.BytesIO(image_bytes()), "s.jpg")},
                              content_type="multipart/form-data")
    assert created.status_code == 201, created.json
    batch_id = created.json["id"]
    assert api.client.get(f"/v1/batches/{batch_id}?offset={offset['maximum']}").status_code == 200
    assert api.client.get(f"/v1/batches/{batch_id}?offset={offset['maximum'] + 1}").json["error"]["code"] == \
        "bad_offset"
    assert api.client.get(f"/v1/batches/{batch_id}?limit={items_limit['maximum']}").status_code == 200
    assert api.client.get(f"/v1/batches/{batch_id}?limit={items_limit['maximum'] + 1}").status_code == 400
