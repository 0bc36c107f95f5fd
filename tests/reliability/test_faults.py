"""Faults: a dropped database connection mid-session never yields a 500 or a partial write."""

import psycopg2
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from labeling.models import LabelQueueItem
from tests.factories import LabelQueueItemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _kill_backend_of_this_connection() -> None:
    """Terminate the server process behind Django's connection, from a second connection."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    s = connection.settings_dict
    other = psycopg2.connect(dbname=s["NAME"], user=s["USER"] or "postgres", host=s["HOST"] or "127.0.0.1",
                             port=s["PORT"] or 5432)
    other.autocommit = True
    with other.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", [pid])
    other.close()


def test_a_dropped_connection_gives_a_clean_503_and_the_retry_succeeds(settings, scientist):  # type: ignore[no-untyped-def]
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60
    item = LabelQueueItemFactory()
    client = Client(raise_request_exception=False)
    client.force_login(scientist)
    url = reverse("compounds:detail", args=[item.compound_id])
    assert client.get(url).status_code == 200

    _kill_backend_of_this_connection()
    response = client.get(url)
    assert response.status_code == 503
    assert b"nothing was saved" in response.content

    # In production Django's request_finished handler closes the broken connection;
    # the test client disconnects that handler, so do its work here.
    connection.close_if_unusable_or_obsolete()
    assert client.get(url).status_code == 200


def test_a_label_interrupted_by_a_dropped_connection_writes_nothing(settings, scientist):  # type: ignore[no-untyped-def]
    from labeling import services

    item = LabelQueueItemFactory()
    _kill_backend_of_this_connection()
    with pytest.raises(Exception):  # noqa: B017 - psycopg2/Django raise different types here
        services.label_submit(item_id=item.pk, user=scientist, value=1.0)
    connection.close()
    item = LabelQueueItem.objects.get(pk=item.pk)
    assert item.status == "pending"
    assert item.measurements.count() == 0
    services.label_submit(item_id=item.pk, user=scientist, value=1.0)
    item.refresh_from_db()
    assert item.status == "labeled"


def test_the_api_answers_a_dropped_connection_with_a_json_503_and_nothing_written(settings, scientist):  # type: ignore[no-untyped-def]
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60
    item = LabelQueueItemFactory()
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=scientist).key}")
    label_url = f"/api/active-learning/queue/{item.pk}/label/"
    assert client.get(f"/api/compounds/{item.compound_id}/").status_code == 200

    _kill_backend_of_this_connection()
    response = client.post(label_url, {"value": 1.0}, format="json")
    assert response.status_code == 503 and response["Content-Type"] == "application/json"
    assert "database is unavailable" in response.json()["detail"]

    connection.close()  # request_finished's work, as above
    item = LabelQueueItem.objects.get(pk=item.pk)
    assert (item.status, item.measurements.count()) == ("pending", 0)
    assert client.post(label_url, {"value": 1.0}, format="json").status_code == 200


def test_a_lock_conflict_is_a_409_to_retry_not_an_outage(settings, scientist):  # type: ignore[no-untyped-def]
    """PostgreSQL undoing a request's transaction for another change to the same rows (here
    a lock timeout while another session holds the item) is not "the database is
    unavailable": the API and the pages answer 409 "retry", nothing is written, and the
    retry succeeds once the other change is done."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60  # the SET below lasts across requests
    item = LabelQueueItemFactory()
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=scientist).key}")
    page = Client(raise_request_exception=False)
    page.force_login(scientist)
    s = connection.settings_dict
    other = psycopg2.connect(dbname=s["NAME"], user=s["USER"] or "postgres", host=s["HOST"] or "127.0.0.1",
                             port=s["PORT"] or 5432)
    try:
        with other.cursor() as cur:  # another session's change holds the item's row
            cur.execute("SELECT id FROM label_queue WHERE id = %s FOR UPDATE", [str(item.pk)])
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = '300ms'")
        response = api.post(f"/api/active-learning/queue/{item.pk}/label/", {"value": 1.0}, format="json")
        assert response.status_code == 409, response.content
        assert "Another change to the same items was running" in response.json()["detail"]
        response = page.post(reverse("labeling:submit", args=[item.pk]), {"value": "1.0", "source": "experimental"})
        assert response.status_code == 409 and b"Please retry" in response.content
    finally:
        other.rollback()
        other.close()
    assert LabelQueueItem.objects.get(pk=item.pk).status == "pending"  # nothing written
    response = api.post(f"/api/active-learning/queue/{item.pk}/label/", {"value": 1.0}, format="json")
    assert response.status_code == 200
    connection.close()
