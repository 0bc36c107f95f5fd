from django.core.management.base import BaseCommand

from config.demo import demo_cycle_open, demo_data_create, demo_model_create


class Command(BaseCommand):
    help = "Load demo users (viewer/scientist/lead), the solubility data set, its assays, model v1 and an open cycle. Idempotent."

    def handle(self, *args: object, **opts: object) -> None:
        demo_data_create(log=self.stdout.write)
        demo_model_create(log=self.stdout.write)
        demo_cycle_open(log=self.stdout.write)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
