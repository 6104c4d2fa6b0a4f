import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from curation.services.duplicates import duplicates_refresh


class Command(BaseCommand):
    help = (
        "Find near duplicates of images not checked yet and recompute the groups (every two members of a group "
        "are verified near copies); curators' decisions are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--threshold",
            type=int,
            default=None,
            help="also check pairs whose pHashes lie within N bits (default: the setting); checks every image again",
        )
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(self, *args, threshold: int | None, as_json: bool, **options):
        try:
            result = duplicates_refresh(threshold=threshold)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        if as_json:
            self.stdout.write(json.dumps(result.as_dict()))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{result.groups} duplicate groups holding {result.images_in_groups} of {result.images} images "
                    f"(largest {result.largest_group}; {result.checked} images checked, {result.candidates} candidate "
                    f"pairs, {result.verified_pairs} verified pairs in all; {result.seconds:.2f}s)."
                )
            )
