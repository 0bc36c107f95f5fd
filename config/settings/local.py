"""Developer settings: `make run` on SQLite with jobs in-process unless REDIS_URL is set."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="local-dev-only-insecure-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "0.0.0.0"])
# Plain static storage so runserver works without collectstatic.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# runserver starts a thread per request and each thread keeps its own connection: with
# persistent connections an idle dev server holds dozens of PostgreSQL connections until
# the server runs out ("too many clients"). Production (gunicorn workers) keeps 60 s.
if "conn_max_age" not in env.str("DATABASE_URL", default=""):
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
