from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import CompoundFactory, UserFactory


@pytest.fixture(autouse=True)
def _fresh_queue_pages(settings):  # type: ignore[no-untyped-def]
    """Each test starts with a new queue version, so no cached queue page outlives its test.

    (A test's transaction is rolled back, so the services' on-commit bumps never run.)
    """
    import time

    from django.core.cache import cache

    from labeling.selectors import QUEUE_VERSION_KEY

    cache.set(QUEUE_VERSION_KEY, time.time_ns(), timeout=None)


def _user_with_role(role: str, username: str):  # type: ignore[no-untyped-def]
    user = UserFactory(username=username)
    # get_or_create: transactional tests flush the groups the data migration made.
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def viewer(db):  # type: ignore[no-untyped-def]
    return _user_with_role("viewer", "vera-viewer")


@pytest.fixture
def scientist(db):  # type: ignore[no-untyped-def]
    return _user_with_role("scientist", "sam-scientist")


@pytest.fixture
def other_scientist(db):  # type: ignore[no-untyped-def]
    return _user_with_role("scientist", "olga-scientist")


@pytest.fixture
def lead(db):  # type: ignore[no-untyped-def]
    user = _user_with_role("lead", "lea-lead")
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
def client_for():  # type: ignore[no-untyped-def]
    """A Django test client logged in as the given user (None: anonymous)."""

    def make(user):  # type: ignore[no-untyped-def]
        c = Client()
        if user is not None:
            c.force_login(user)
        return c

    return make


@pytest.fixture
def rq_queue(settings):  # type: ignore[no-untyped-def]
    """The real RQ default queue on the test Redis database, emptied before and after."""
    import django_rq

    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


def worker_env() -> dict[str, str]:
    """Environment for a worker subprocess that talks to this test database and Redis."""
    import os

    from django.db import connection

    s = connection.settings_dict
    env = os.environ.copy()
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    env["CHEMLOOP_TEST_SUBPROCESS"] = "1"
    env["DATABASE_URL"] = f"postgres://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return env


@pytest.fixture
def run_worker(transactional_db, rq_queue):  # type: ignore[no-untyped-def]
    """Run a real `rqworker --burst` process until the queue is empty."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent

    def run(timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "rqworker", "default", "--burst"],
            cwd=root,
            env=worker_env(),
            timeout=timeout,
            capture_output=True,
            text=True,
            check=True,
        )

    return run


@pytest.fixture
def library(db):  # type: ignore[no-untyped-def]
    """Seven named structures for the structure-search tests."""
    names = {
        "acetic acid": "CC(=O)O",
        "methyl acetate": "CC(=O)OC",
        "benzoic acid": "OC(=O)c1ccccc1",
        "toluene": "Cc1ccccc1",
        "ethylbenzene": "CCc1ccccc1",
        "cyclohexane": "C1CCCCC1",
        "pyridine": "c1ccncc1",
    }
    return {name: CompoundFactory(smiles=smiles, name=name) for name, smiles in names.items()}


@pytest.fixture
def api_for():  # type: ignore[no-untyped-def]
    """An API client authenticated with the user's DRF token (None: anonymous)."""

    def make(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make
