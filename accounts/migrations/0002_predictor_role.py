from django.db import migrations


def create_predictor_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="predictor")


def remove_predictor_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="predictor").delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_roles")]

    operations = [migrations.RunPython(create_predictor_role, remove_predictor_role)]
