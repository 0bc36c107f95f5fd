import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()


def _warm_up() -> None:
    """Import every view (and what it imports: RDKit, XGBoost, …) and compile the base
    template now, not in a worker's first request: otherwise the first ~20 requests a
    fresh worker gets wait ~1.4 s behind that one (bench/web_load.py, p99)."""
    from django.template.loader import get_template
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the import is the point
    get_template("base.html")


_warm_up()
