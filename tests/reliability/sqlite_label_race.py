"""Six scientists label the same item at once, five times, on the `make run` SQLite setup.

Run by tests/reliability/test_sqlite_demo.py in a subprocess (the test suite itself runs
on PostgreSQL); prints the outcome counts as JSON.
"""

import json
import os
import sys
import threading
from collections import Counter

os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
os.environ["DATABASE_URL"] = f"sqlite:///{sys.argv[1]}"
os.environ.pop("REDIS_URL", None)

import django

django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from config.exceptions import Conflict  # noqa: E402
from labeling import services  # noqa: E402
from tests.factories import LabelQueueItemFactory, UserFactory  # noqa: E402

call_command("migrate", verbosity=0)
users = []
for i in range(6):
    user = UserFactory(username=f"racer{i}")
    user.groups.add(Group.objects.get(name="scientist"))
    users.append(user)
outcomes: list[str] = []
for _ in range(5):
    item = LabelQueueItemFactory()
    barrier = threading.Barrier(len(users))

    def label(user, item=item, barrier=barrier):  # type: ignore[no-untyped-def]
        try:
            barrier.wait()
            services.label_submit(item_id=item.pk, user=user, value=1.0)
            outcomes.append("saved")
        except Conflict:
            outcomes.append("409")
        except Exception as exc:  # noqa: BLE001 - any other outcome is what the test looks for
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=label, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
print(json.dumps(dict(Counter(outcomes))))
