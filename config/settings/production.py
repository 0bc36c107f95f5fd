"""Production settings: every secret comes from the environment, no defaults."""

import environ

from .base import *  # noqa: F403
from .base import env

# base.env carries local defaults (ALLOWED_HOSTS=127.0.0.1,localhost) in its scheme, and a
# scheme default wins over a missing variable; production's required values are read
# through an Env without defaults so a missing one stops the process.
_required = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY")  # no default: a missing key must stop the process
ALLOWED_HOSTS = _required.list("ALLOWED_HOSTS")  # no default: serving 127.0.0.1 only is a misconfiguration
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
