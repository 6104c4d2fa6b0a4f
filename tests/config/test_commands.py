"""DESIGN: every command of the project accepts --json (and then prints one JSON summary object last)."""

from django.core.management import get_commands, load_command_class

PROJECT_APPS = ("core", "accounts", "curation", "labeling", "ml")


def test_every_project_command_accepts_json():
    commands = {name: app for name, app in get_commands().items() if app in PROJECT_APPS}

    assert {"add_user", "import_images", "find_duplicates", "create_snapshot", "train", "demo"} <= set(commands)
    for name, app in commands.items():
        parser = load_command_class(app, name).create_parser("manage.py", name)
        assert "--json" in parser.format_help(), f"{name} has no --json"
