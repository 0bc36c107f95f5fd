import pytest
from django.contrib.auth.models import Group
from django.test import Client

from tests.factories import UserFactory


def _user_with_role(role: str, username: str):  # type: ignore[no-untyped-def]
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name=role))
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
