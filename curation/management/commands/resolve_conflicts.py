import json

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from curation.services.conflicts import conflicts_open, conflicts_resolve


class Command(BaseCommand):
    help = (
        "Resolve exact duplicates whose source labels disagree: the label from a preferred folder or source becomes "
        "the final label, or --prefer skip excludes them. Audited."
    )

    def add_arguments(self, parser):
        parser.add_argument("--prefer", required=True, metavar="FOLDER_OR_SOURCE|skip")
        parser.add_argument("--actor", default="", help="username recorded in the audit log (default: none)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(self, *args, prefer: str, actor: str, as_json: bool, **options):
        user = None
        if actor:
            user = get_user_model().objects.filter(username=actor).first()
            if user is None:
                raise CommandError(f"No user {actor!r}.")
        before = conflicts_open().count()
        try:
            result = conflicts_resolve(prefer=prefer, actor=user)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        if as_json:
            self.stdout.write(json.dumps({"open_before": before, **result.as_dict()}))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{before} open conflicts: {len(result.labeled)} labeled from {prefer!r}, {len(result.excluded)} "
                f"excluded, {len(result.left_open)} left open (the rule names none or several of their labels)."
            )
        )
