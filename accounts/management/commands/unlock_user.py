import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import login_unlock


class Command(BaseCommand):
    help = "End the login lockout of a user (after too many wrong passwords), or of an address with --address."

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", default="")
        parser.add_argument("--address", default="", help="also unlock this client address (IP)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(self, *args, username: str, address: str, as_json: bool, **options):
        try:
            cleared = login_unlock(username=username, address=address)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        if as_json:
            self.stdout.write(json.dumps({"username": username, "address": address, "records_cleared": cleared}))
            return
        who = " and ".join(
            part for part in (username and f"user {username!r}", address and f"address {address}") if part
        )
        if cleared:
            self.stdout.write(self.style.SUCCESS(f"Unlocked {who} ({cleared} lockout record(s) cleared)."))
        else:
            self.stdout.write(f"{who[0].upper()}{who[1:]} was not locked out.")
