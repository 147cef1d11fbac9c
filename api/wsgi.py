"""WSGI entry point: ``gunicorn api.wsgi:app`` (settings from ``ATELIER_*`` environment variables)."""

from api.app import create_app
from shared.logging import configure_logging
from shared.settings import Settings

settings = Settings.from_env()
configure_logging("api", settings.log_format)  # JSON lines with the job id (shared/logging.py)
app = create_app(settings)
