"""Create the three role groups with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APPS = ("compounds", "mlmodels", "labeling", "cycles")

SCIENTIST_EXTRA = [
    ("compounds", "add_measurement"),
    ("labeling", "change_labelqueueitem"),
]


def _ensure_permissions(apps):
    # Permissions are normally created after all migrations ran; create them now
    # so the groups can reference them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def forwards(apps, schema_editor):
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ours = Permission.objects.filter(content_type__app_label__in=APPS)

    viewer, _ = Group.objects.get_or_create(name="viewer")
    viewer.permissions.set(ours.filter(codename__startswith="view_"))

    scientist, _ = Group.objects.get_or_create(name="scientist")
    extra = [ours.get(content_type__app_label=a, codename=c) for a, c in SCIENTIST_EXTRA]
    scientist.permissions.set(list(ours.filter(codename__startswith="view_")) + extra)

    lead, _ = Group.objects.get_or_create(name="lead")
    lead_perms = list(ours) + list(
        Permission.objects.filter(content_type__app_label="auth", codename__in=["view_user", "view_group"])
    ) + list(Permission.objects.filter(content_type__app_label="authtoken"))
    lead.permissions.set(lead_perms)


def backwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["viewer", "scientist", "lead"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("compounds", "0002_initial"),
        ("mlmodels", "0001_initial"),
        ("labeling", "0001_initial"),
        ("cycles", "0001_initial"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
