"""Settings shared by every environment; everything that varies is read from the environment."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# The shared data folder sits beside the project (../shared/data); benchmarks and
# the simulate command read the big data sets from there instead of committing them.
SHARED_DATA_DIR = BASE_DIR.parent / "shared" / "data"

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost"]),
    REDIS_URL=(str, ""),
)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core -------------------------------------------------------------------
DEBUG = env("DEBUG")
SECRET_KEY = env("SECRET_KEY", default="")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")

INSTALLED_APPS = [
    "config.apps.ChemloopAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_rq",
    "template_partials",
    "axes",
    "compounds",
    "mlmodels",
    "labeling",
    "cycles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After auth and messages, so its 400 page renders like every other page.
    "config.middleware.BadInputMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into a clear 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.context_processors.roles",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
# SQLite is only the zero-setup default for `make run`; tests and production use PostgreSQL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # `make run` serves several users from one file: writers wait for the lock (up to
    # 20 s) instead of failing at once, and a write transaction takes the lock when it
    # starts, so two simultaneous labels queue up and the loser gets its 409, not a 503.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ------------------------------------------------------------------
# Structure SVGs and queue pages are cached; Redis when configured, process memory otherwise.
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",  # one client per pool, see config/cache.py
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "chemloop",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Queue pages are cached per queue version (labeling.views.queue); the version lives in the
# cache, so only a cache every web process shares (Redis) keeps them coherent. 0 = off.
QUEUE_PAGE_CACHE_SECONDS = env.int("QUEUE_PAGE_CACHE_SECONDS", default=30 if REDIS_URL else 0)

# --- Jobs (RQ) --------------------------------------------------------------
# With REDIS_URL unset, jobs run in-process right after the transaction commits
# (see config/jobs.py); with it set, `python manage.py rqworker default` runs them.
RQ_QUEUES = {
    "default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 3600},
}
JOBS_IN_PROCESS = not REDIS_URL

# --- Auth -------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses logins for a locked-out username + address.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Lock a username from one address after 5 failed logins, for 15 minutes.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# --- I18N -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Compound files may be large; the import streams them, but refuse absurd uploads early.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
CHEMLOOP_MAX_UPLOAD_BYTES = env.int("CHEMLOOP_MAX_UPLOAD_BYTES", default=50 * 1024 * 1024)
# Structure search (compound list, GET /api/compounds/): a substructure search parses
# each stored SMILES its screen (the stored pattern fingerprint) cannot rule out (~45 µs
# end to end for drug-like molecules, BENCHMARKS.md), so one request parses no more than
# this many (~5 s) and says when it stopped early; both searches return at most MAX_HITS.
CHEMLOOP_SUBSTRUCTURE_SCAN_LIMIT = env.int("CHEMLOOP_SUBSTRUCTURE_SCAN_LIMIT", default=100_000)
CHEMLOOP_STRUCTURE_SEARCH_MAX_HITS = env.int("CHEMLOOP_STRUCTURE_SEARCH_MAX_HITS", default=500)
# The compound list's SDF download computes 2-D coordinates (~0.8 ms a compound): this
# many take ~16 s, inside the web worker's timeout. CSV has no cap (~25 µs a row).
CHEMLOOP_SDF_EXPORT_MAX = env.int("CHEMLOOP_SDF_EXPORT_MAX", default=20_000)
# A design strategy (variance_reduction) holds the pool's feature matrix (4 bytes x ~700
# columns a compound) and its cost grows with candidates x landmarks: on a bigger pool it
# designs over a seeded random sample of this many compounds (the cycle records it).
CHEMLOOP_FEATURE_POOL_CAP = env.int("CHEMLOOP_FEATURE_POOL_CAP", default=20_000)
# A selection over more than DISTRIBUTE_ABOVE compounds can share its scoring with this
# many RQ helper jobs (cycles.services.scoring). 0 (the default) scores in the selecting
# process, which already uses every core: a helper on the same machine only competes for
# them (1M pool on 2 cores: 28.6 s alone, 47.7 s with one helper; BENCHMARKS.md). Set it
# to the number of workers on OTHER machines.
CHEMLOOP_SCORING_HELPERS = env.int("CHEMLOOP_SCORING_HELPERS", default=0)
CHEMLOOP_DISTRIBUTE_ABOVE = env.int("CHEMLOOP_DISTRIBUTE_ABOVE", default=200_000)

# --- REST framework ---------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.api_pagination.Pagination",
    # JSON only: the docs are /api/docs/ (Swagger UI); DRF's browsable pages need querysets
    # on every list view and were 500s in a browser.
    "DEFAULT_RENDERER_CLASSES": ["config.api_json.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "config.api_json.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
    "DEFAULT_METADATA_CLASS": "config.api_metadata.InputSerializerMetadata",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "chemloop API",
    "DESCRIPTION": "Human-in-the-loop active learning on chemical compounds.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- chemloop ---------------------------------------------------------------
# Run after every import that registered new compounds (after commit): store the
# default featurizer's per-compound features (so scoring a pool never re-parses a
# molecule) and the substructure screen, in chunked jobs.
CHEMLOOP_IMPORT_FOLLOWUPS = env.list(
    "CHEMLOOP_IMPORT_FOLLOWUPS",
    default=[
        "mlmodels.services.compound_features_backfill_enqueue",
        # The substructure search's screen (compounds.chemistry.pattern_fingerprint).
        "compounds.services.compound_patterns_backfill_enqueue",
    ],
)
# Where trained model artifacts are written (joblib files, written atomically).
ARTIFACT_ROOT = Path(env("ARTIFACT_ROOT", default=str(MEDIA_ROOT / "artifacts")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
