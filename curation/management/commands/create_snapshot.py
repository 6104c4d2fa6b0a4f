import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from curation.services.snapshots import snapshot_create


class Command(BaseCommand):
    help = "Freeze the curated labels into an immutable snapshot with leakage-free, stable train/val/test splits."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--ratios", type=float, nargs=3, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "VAL", "TEST"))
        parser.add_argument("--classes", nargs="+", metavar="CODE", help="only these class codes (default: all)")
        parser.add_argument("--cap-per-class", type=int, help="at most this many images per class (down-sampling)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(self, *args, name, seed, ratios, classes, cap_per_class, as_json, **options):
        try:
            snapshot = snapshot_create(
                name=name, seed=seed, ratios=ratios, classes=classes, cap_per_class=cap_per_class
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "id": snapshot.pk,
                        "name": snapshot.name,
                        "content_hash": snapshot.content_hash,
                        "seed": snapshot.seed,
                        "ratios": snapshot.ratios,
                        "items": snapshot.item_count,
                        "stats": snapshot.stats,
                    }
                )
            )
        else:
            per_split = snapshot.stats["per_split"]
            self.stdout.write(
                self.style.SUCCESS(
                    f"Snapshot #{snapshot.pk} {snapshot.name!r}: {snapshot.item_count} images "
                    f"(train {per_split['train']}, val {per_split['val']}, test {per_split['test']}), "
                    f"leakage {snapshot.stats['leakage']}, content hash {snapshot.content_hash[:12]}."
                )
            )
