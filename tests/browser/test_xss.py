"""HTML/JS in compound names and label notes never runs in the browser."""

import pytest

from labeling import services
from tests.factories import CompoundFactory, LabelQueueItemFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def test_script_in_names_and_notes_is_shown_as_text_not_run(page, login, live_server, lead, scientist):  # type: ignore[no-untyped-def]
    compound = CompoundFactory(smiles="CCCCO", name=f"butanol {PAYLOAD}")
    item = LabelQueueItemFactory(compound=compound)
    services.label_submit(item_id=item.pk, user=scientist, value=1.0, notes=f"note {PAYLOAD}")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    login(lead)
    for path in (
        "/queue/?status=all",
        f"/queue/label/{item.pk}/",
        "/compounds/",
        f"/compounds/{compound.pk}/",
        "/admin/labeling/labelqueueitem/",
    ):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__xss") is None, path
        # The payload is visible as text on the queue and detail pages.
        if path.startswith(("/queue/?", "/compounds/")):
            assert "<script>" in page.inner_text("body"), path
    assert dialogs == []
