import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from curation.models import Snapshot
from ml.services.runs import training_run_execute, training_run_request
from ml.training.config import PRESETS


class Command(BaseCommand):
    help = "Train on a snapshot: queue a run for the `training` workers, or run it here with --sync."

    def add_arguments(self, parser):
        parser.add_argument("--snapshot", type=int, required=True, help="snapshot id")
        parser.add_argument("--preset", default="seed", choices=list(PRESETS))
        parser.add_argument("--config", default="{}", help="JSON overrides, e.g. '{\"stage1_epochs\": 5}'")
        parser.add_argument(
            "--cross-val",
            type=int,
            default=None,
            metavar="K",
            dest="cross_val",
            help="a cross-validation run: K fold models (suspected label errors), then the model",
        )
        parser.add_argument("--sync", action="store_true", help="train in this process instead of a worker")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(
        self,
        *args,
        snapshot: int,
        preset: str,
        config: str,
        cross_val: int | None,
        sync: bool,
        as_json: bool,
        **options,
    ):
        frozen = Snapshot.objects.filter(pk=snapshot).first()
        if frozen is None:
            raise CommandError(f"There is no snapshot {snapshot}.")
        try:
            overrides = json.loads(config)
        except json.JSONDecodeError as error:
            raise CommandError(f"--config is not valid JSON: {error}.") from error
        try:
            run, created = training_run_request(
                snapshot=frozen, preset=preset, config=overrides, cross_val=cross_val, sync=sync
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        if sync and created:
            run = training_run_execute(run_id=run.pk)
        summary = {
            "run": run.pk,
            "status": run.status,
            "created": created,
            "snapshot": frozen.pk,
            "preset": run.preset,
            "cross_val": run.cross_val,
            "error": run.error,
        }
        if sync and hasattr(run, "model_version") and run.status == "succeeded":
            summary["model_version"] = run.model_version.pk
            summary["metrics"] = {k: v for k, v in run.model_version.metrics.items() if not isinstance(v, list)}
            if run.cross_val:
                summary["cross_val_report"] = run.cross_val_report
                summary["label_issues"] = run.label_issues.count()
        if as_json:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(f"Training run #{run.pk}: {run.status}" + (f" — {run.error}" if run.error else ""))
        if run.status == "failed":
            raise CommandError(run.error)
