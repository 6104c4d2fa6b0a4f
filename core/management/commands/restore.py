import json
import subprocess
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.services.backup import backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup made by `backup` into an empty database (PostgreSQL: one without tables), then "
        "check the row counts and the stored files against its manifest."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, metavar="DIR")
        parser.add_argument(
            "--skip-storage-check", action="store_true", help="do not read every stored file back to check its sha256"
        )
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(self, *args, folder: Path, skip_storage_check: bool, as_json: bool, **options):
        try:
            report = backup_restore(folder=folder, check_storage=not skip_storage_check)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        except subprocess.CalledProcessError as error:
            raise CommandError(f"{Path(error.cmd[0]).name} failed: {error.stderr.strip()}") from error
        summary = {
            "ok": report.ok,
            "tables_checked": report.counts_checked,
            "count_mismatches": report.count_mismatches,
            "files_checked": report.files_checked,
            "files_missing": report.files_missing,
            "files_changed": report.files_changed,
        }
        if as_json:
            self.stdout.write(json.dumps(summary))
        elif report.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Restored; {report.counts_checked} tables match the manifest"
                    + (f" and {report.files_checked} stored files their sha256." if report.files_checked else ".")
                )
            )
        if not report.ok:
            raise CommandError(
                f"Restored, but it does not match the manifest: {len(report.count_mismatches)} tables differ "
                f"({report.count_mismatches}), {len(report.files_missing)} files missing, "
                f"{len(report.files_changed)} files changed."
            )
