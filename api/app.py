"""The Flask application factory.

``create_app()`` reads ``Settings.from_env()``; tests pass settings and, where they test one layer, their own
registry, storage or queue. The API never imports TensorFlow or worker code: it sends tasks by name.
"""

from __future__ import annotations

from flask import Flask

from api import auth, ratelimit, security_headers, web
from api.blueprints import batches, capabilities, docs, health, jobs, metrics, styles, videos, webhooks
from api.blueprints import events as event_streams
from api.context import EXTENSION_NAME, ApiContext
from api.errors import register_error_handlers
from services.queue import JobQueue
from services.registry import JobRegistry
from services.storage import Storage, open_storage
from shared.settings import Settings


def create_app(
    settings: Settings | None = None,
    *,
    registry: JobRegistry | None = None,
    storage: Storage | None = None,
    queue: JobQueue | None = None,
) -> Flask:
    settings = settings or Settings.from_env()
    # No app-level static folder: the studio's files are the web blueprint's (api/web.py, api.web.PAGE_PATHS); every
    # other route is in the OpenAPI document.
    app = Flask(__name__, static_folder=None)
    # Werkzeug refuses larger bodies with 413 before reading them (mapped to JSON in api.errors).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_NAME] = ApiContext(
        settings=settings,
        registry=registry or JobRegistry.from_url(settings.redis_url),
        storage=storage or open_storage(settings),
        queue=queue or JobQueue(settings),
    )
    register_error_handlers(app)
    ratelimit.install(app)
    auth.install(app, [jobs.bp, batches.bp, capabilities.bp, styles.bp, webhooks.bp])
    security_headers.install(app, page_blueprint=web.bp.name, settings=settings)
    for blueprint in (jobs.bp, batches.bp, capabilities.bp, styles.bp, webhooks.bp, health.bp, docs.bp, metrics.bp,
                      web.bp):
        app.register_blueprint(blueprint)
    # Videos (issue 12): keys as for jobs; their bodies may be larger (api/blueprints/videos.py sets the limit).
    auth.install(app, [videos.bp])
    app.register_blueprint(videos.bp)
    # The live-event routes (/v1/{jobs,styles,videos,batches}/<id>/events) need the same keys as the resources.
    auth.install(app, [event_streams.bp])
    app.register_blueprint(event_streams.bp)
    return app
