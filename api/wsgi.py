"""WSGI entry point: ``gunicorn api.wsgi:app`` (settings from ``ATELIER_*`` environment variables)."""

from api.app import create_app

app = create_app()
