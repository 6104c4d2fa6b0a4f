import getpass
import json
import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import Role
from accounts.services import user_create_or_update


class Command(BaseCommand):
    help = "Create a user with a role, or give an existing user a role (and a new password)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, help=f"one of: {', '.join(Role.values)}")
        parser.add_argument("--password", help="asked for at the terminal when left out")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(self, *args, username: str, role: str, password: str | None, as_json: bool, **options):
        if role not in Role.values:
            raise CommandError(f"Unknown role {role!r}. Known roles: {', '.join(Role.values)}.")
        if password is None:
            if sys.stdin.isatty():
                password = _prompt_password()
            elif not get_user_model().objects.filter(username=username).exists():
                raise CommandError("No --password given and no terminal to ask for one.")
        try:
            user, created = user_create_or_update(username=username, role=role, password=password)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        if as_json:
            self.stdout.write(json.dumps({"username": user.username, "role": role, "created": created}))
        else:
            verb = "Created" if created else "Updated"
            self.stdout.write(self.style.SUCCESS(f"{verb} user {user.username!r} with role {role}."))


def _prompt_password() -> str:
    while True:
        first = getpass.getpass("Password: ")
        if not first:
            raise CommandError("A password is needed (or pass --password).")
        if first == getpass.getpass("Password (again): "):
            return first
        sys.stderr.write("The passwords differ; try again.\n")
