import json
import subprocess
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.services.backup import backup_write


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the database into DIR (pg_dump on PostgreSQL, dumpdata on SQLite) "
        "with a manifest of every stored file and its sha256. Back up the media volume or bucket as well."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, metavar="DIR", help="a new or empty folder")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(self, *args, folder: Path, as_json: bool, **options):
        try:
            manifest = backup_write(folder=folder)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        except subprocess.CalledProcessError as error:
            raise CommandError(f"{Path(error.cmd[0]).name} failed: {error.stderr.strip()}") from error
        summary = {
            "folder": str(folder),
            "database": manifest["database"]["file"],
            "rows": sum(manifest["counts"].values()),
            "files": len(manifest["storage"]),
            "files_missing": len(manifest["storage_missing_at_backup"]),
        }
        if as_json:
            self.stdout.write(json.dumps(summary))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Backed up {summary['rows']} rows to {folder / summary['database']}; "
                f"the manifest lists {summary['files']} stored files."
            )
        )
        if summary["files_missing"]:
            self.stderr.write(f"{summary['files_missing']} files the database refers to are missing from storage.")
