"""Leads lose the API-token permissions the role migration gave them.

With them a lead could read every user's token key in admin and create a token for any
user, i.e. act as anyone over the API and put another name in the audit trail. Tokens
are issued by an administrator (`manage.py drf_create_token USER`, or admin as superuser).
"""

from django.db import migrations


def forwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    tokens = Permission.objects.filter(content_type__app_label="authtoken")
    for lead in Group.objects.filter(name="lead"):
        lead.permissions.remove(*tokens)


class Migration(migrations.Migration):
    dependencies = [("cycles", "0002_roles")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
