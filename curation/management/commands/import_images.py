import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from curation.services.imports import import_images, parse_class_map


class Command(BaseCommand):
    help = (
        "Import a folder in the Kaggle layout (class sub-folders at any depth below PATH) or a zip. "
        "Running it again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--source", default="", help="source name (default: the folder or zip name)")
        parser.add_argument("--trusted", action="store_true", help="count this source's labels as one agreeing reader")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FOLDER=code",
            help="map a folder name to a class code (repeatable)",
        )
        parser.add_argument("--workers", type=int, default=0, help="decoding processes (default: one per core)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(
        self, *args, path: Path, source: str, trusted: bool, map: list[str], workers: int, as_json: bool, **options
    ):
        bar = tqdm(
            total=0,
            unit="img",
            desc="Importing",
            disable=not sys.stderr.isatty(),
            file=sys.stderr,
            dynamic_ncols=True,
        )

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            summary = import_images(
                path=path,
                source_name=source or path.resolve().stem,
                trusted=trusted,
                class_map=parse_class_map(map),
                progress=progress,
                workers=workers,
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        finally:
            bar.close()
        if as_json:
            self.stdout.write(json.dumps(summary.as_dict()))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {summary.imported} new images in {summary.seconds:.1f}s "
                f"({summary.already_present} already present, "
                f"{summary.duplicates_exact} exact duplicates in this batch, "
                f"{len(summary.rejected)} rejected, {summary.duplicate_groups} near-duplicate groups in all)."
            )
        )
        for rejected in summary.rejected:
            self.stdout.write(f"  rejected {rejected['path']}: {rejected['reason']}")
