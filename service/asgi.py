"""ASGI entry point for uvicorn / gunicorn workers: `uvicorn service.asgi:app`."""

from service import logs
from service.app import create_app
from service.settings import get_settings

logs.configure(get_settings().log_level)
app = create_app()
