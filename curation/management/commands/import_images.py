import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from curation.importing import LISTED_IN_MESSAGES, UnmappedFolders, map_template_text, metadata_parse
from curation.services.imports import import_images, import_plan_for, parse_class_map


class Command(BaseCommand):
    help = (
        "Import a folder in the Kaggle layout (class sub-folders at any depth below PATH) or a zip. "
        "Running it again adds nothing. Start with --dry-run."
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
            help="map a folder name (or label value) to a class code, an index or skip (repeatable)",
        )
        parser.add_argument(
            "--map-file", type=Path, metavar="FILE.csv", help="columns folder,code (code: a class code, index or skip)"
        )
        parser.add_argument(
            "--unmapped",
            choices=["fail", "skip"],
            default="fail",
            help="folders that match no class: refuse the import (default) or leave their files out",
        )
        parser.add_argument("--dry-run", action="store_true", help="scan and print the plan; write nothing")
        parser.add_argument(
            "--write-map-template",
            type=Path,
            metavar="FILE.csv",
            help="write folder,code rows for every folder found (unknown ones empty) and stop",
        )
        parser.add_argument(
            "--metadata", type=Path, metavar="FILE.csv", help="metadata joined on image_id or filename (file stem)"
        )
        parser.add_argument(
            "--label-column", default="", metavar="COL", help="take the source label from this metadata column"
        )
        parser.add_argument("--workers", type=int, default=0, help="decoding processes (default: one per core)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(self, *args, **options):
        path: Path = options.pop("path")
        as_json: bool = options["as_json"]
        try:
            map_file = options["map_file"]
            class_map = parse_class_map(
                options["map"],
                map_file=map_file.read_bytes() if map_file else None,
                map_file_name=map_file.name if map_file else "",
            )
            if options["dry_run"] or options["write_map_template"]:
                return self._plan_only(path, class_map=class_map, **options)
            summary = self._import(path, class_map=class_map, **options)
        except UnmappedFolders as error:
            if as_json:
                self.stdout.write(json.dumps({"error": error.messages[0], "unmapped": error.unmapped}))
            raise CommandError(error.messages[0]) from error
        except (ValidationError, OSError) as error:
            message = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            if as_json:
                self.stdout.write(json.dumps({"error": message}))
            raise CommandError(message) from error
        if as_json:
            self.stdout.write(json.dumps(summary.as_dict()))
            return
        self._print_summary(summary)

    def _import(self, path: Path, *, class_map: dict, **options):
        bar = tqdm(
            total=0, unit="img", desc="Importing", disable=not sys.stderr.isatty(), file=sys.stderr, dynamic_ncols=True
        )

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            return import_images(
                path=path,
                source_name=options["source"] or path.resolve().stem,
                trusted=options["trusted"],
                class_map=class_map,
                unmapped=options["unmapped"],
                metadata_path=options["metadata"],
                label_column=options["label_column"],
                progress=progress,
                workers=options["workers"],
            )
        finally:
            bar.close()

    def _plan_only(self, path: Path, *, class_map: dict, **options) -> None:
        metadata_path = options["metadata"]
        metadata = metadata_parse(metadata_path.read_bytes(), name=metadata_path.name) if metadata_path else None
        plan = import_plan_for(
            path,
            class_map=class_map,
            unmapped=options["unmapped"],
            metadata=metadata,
            label_column=options["label_column"],
            refuse=False,
        )
        report = plan.as_dict()
        template = options["write_map_template"]
        if template:
            template.write_text(map_template_text(plan), encoding="utf-8")
            report["template"] = str(template)
        if options["as_json"]:
            self.stdout.write(json.dumps({"dry_run": True, **report}))
            return
        self._print_plan(report)
        if template:
            rows = len(report["folders"]) + len(report["label_values"])
            self.stdout.write(
                self.style.SUCCESS(
                    f"Wrote {rows} rows to {template} ({len(report['unmapped'])} without a code): fill in the code "
                    f"column (a class code, an index or skip) and run again with --map-file {template}."
                )
            )
        self.stdout.write("Dry run: nothing was written.")

    def _print_plan(self, report: dict) -> None:
        self.stdout.write(f"{'files':>7}  {'maps to':<28} folder")
        for folder in report["folders"]:
            self.stdout.write(f"{folder['files']:>7}  {folder['code']:<28} {folder['folder']}")
        for value in report["label_values"]:
            self.stdout.write(f"{value['files']:>7}  {value['code']:<28} label {value['value']!r}")
        self.stdout.write(f"{report['files']} images would be imported.")
        if report["unmapped"]:
            self.stdout.write(
                self.style.WARNING(
                    f"{len(report['unmapped'])} folders match no class; the import is refused unless you map them "
                    "(--write-map-template FILE.csv, then --map-file FILE.csv) or pass --unmapped skip."
                )
            )
        self._print_skipped(report["skipped"])
        self._print_metadata(report["metadata"])

    def _print_summary(self, summary) -> None:
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {summary.imported} new images in {summary.seconds:.1f}s "
                f"({summary.already_present} already present, "
                f"{summary.duplicates_exact} exact duplicates in this batch, "
                f"{len(summary.rejected)} rejected, {len(summary.skipped)} skipped as not images, "
                f"{summary.duplicate_groups} near-duplicate groups in all)."
            )
        )
        for rejected in summary.rejected:
            self.stdout.write(f"  rejected {rejected['path']}: {rejected['reason']}")
        self._print_skipped(summary.skipped)
        self._print_metadata(summary.report.get("metadata"))

    def _print_skipped(self, skipped: list[dict]) -> None:
        for row in skipped[:LISTED_IN_MESSAGES]:
            self.stdout.write(f"  skipped {row['path']}: {row['reason']}")
        if len(skipped) > LISTED_IN_MESSAGES:
            self.stdout.write(f"  … and {len(skipped) - LISTED_IN_MESSAGES} more skipped (--json lists them all)")

    def _print_metadata(self, metadata: dict | None) -> None:
        if not metadata:
            return
        unmatched, without = metadata["unmatched_rows"], metadata["images_without_metadata"]
        self.stdout.write(
            f"Metadata: {metadata['matched_rows']} of {metadata['rows']} rows matched an image; "
            f"{len(unmatched)} rows match no image, {len(without)} images have no row."
        )
        for title, items in (("row without an image", unmatched), ("image without a row", without)):
            for item in items[:LISTED_IN_MESSAGES]:
                self.stdout.write(f"  {title}: {item}")
            if len(items) > LISTED_IN_MESSAGES:
                self.stdout.write(f"  … and {len(items) - LISTED_IN_MESSAGES} more (--json lists them all)")
