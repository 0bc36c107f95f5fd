"""Test settings: real PostgreSQL and Redis, fast password hashing."""

import os

from .base import *  # noqa: F403
from .base import BASE_DIR, env

SECRET_KEY = "test-only-key"
DEBUG = False
ALLOWED_HOSTS = ["*"]
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/chemloop"),
}
# A test database per test run (pytest-django still appends the xdist worker), so two
# runs on one machine never destroy each other's database. Worker subprocesses get
# the resolved name through DATABASE_URL and must not rename it again.
if not os.environ.get("CHEMLOOP_TEST_SUBPROCESS"):
    _run = os.environ.setdefault("CHEMLOOP_TEST_RUN", str(os.getpid()))
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{_run}"}
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Each pytest-xdist worker gets its own Redis database so queues never mix.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
# …and its own Redis database, chosen by run and xdist worker (0 stays for development).
_redis_db = 1 + (int(os.environ.get("CHEMLOOP_TEST_RUN", os.getpid())) + int(_worker.removeprefix("gw") or 0)) % 15
TEST_REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + f"/{_redis_db}"
RQ_QUEUES = {"default": {"URL": TEST_REDIS_URL, "DEFAULT_TIMEOUT": 600}}
CACHES = {
    "default": {
        "BACKEND": "config.cache.RedisCache",
        "LOCATION": TEST_REDIS_URL,
        "KEY_PREFIX": f"chemloop-test-{os.environ.get('CHEMLOOP_TEST_RUN', '')}-{_worker}",
    }
}
# As in production with Redis: queue pages cached per version (sessions in the database).
QUEUE_PAGE_CACHE_SECONDS = 30
JOBS_IN_PROCESS = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = BASE_DIR / ".test-media" / _worker
ARTIFACT_ROOT = MEDIA_ROOT / "artifacts"
# Tests enqueue only the jobs they are about (one test turns the feature backfill on).
CHEMLOOP_IMPORT_FOLLOWUPS: list[str] = []
