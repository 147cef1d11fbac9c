"""The studio: the browser front end served by the API at ``/`` (issue 14 item 1).

One HTML page (``api/templates/index.html``) with hash routes handled by plain JavaScript modules in
``api/static/js/`` (no build step, nothing fetched from the network): ``#/`` the studio form, ``#/jobs/<id>`` a
job's progress, previews and result, ``#/gallery`` the tenant's jobs, ``#/batches/<id>``, ``#/styles`` and
``#/styles/<id>``, and ``#/videos`` when the API has video routes. Every piece of data comes from the ``/v1`` API
with the API key the person typed once per browser session (``sessionStorage``), sent as ``Authorization: Bearer``;
so these routes are public and carry no data themselves.

The parameters form is rendered here from ``shared.params.PARAM_SPECS`` (``api.web_form``). These routes are pages,
not API operations: ``PAGE_PATHS`` lists them, and the OpenAPI route check (tests/api/test_api_openapi.py) leaves
exactly those out.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from api.context import api_context
from api.web_form import form_fields
from shared.params import MAX_STYLES

bp = Blueprint("web", __name__, static_folder="static", static_url_path="/static", template_folder="templates")

# The page routes as Flask spells them (every other route of the app is an API operation in api/openapi.py).
PAGE_PATHS = ("/", "/static/<path:filename>")

# Kinds of work whose pages the studio shows when the API serves their list route ("simply absent" otherwise).
OPTIONAL_KINDS = {"videos": "/v1/videos"}


@bp.get("/")
def studio() -> str:
    fields = form_fields()
    served = {rule.rule for rule in current_app.url_map.iter_rules()}
    kinds = [kind for kind, path in OPTIONAL_KINDS.items() if path in served]
    return render_template(
        "index.html",
        primary_fields=[f for f in fields if f.primary and f.widget not in ("blend", "model")],
        advanced_fields=[f for f in fields if not f.primary and f.widget not in ("blend", "model")],
        blend_field=next((f for f in fields if f.widget == "blend"), None),
        model_field=next((f for f in fields if f.widget == "model"), None),
        max_styles=MAX_STYLES,
        auth=api_context().settings.auth,
        kinds=kinds,
    )
