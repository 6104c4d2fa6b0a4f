import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ml.models import ModelVersion
from ml.services.predictions import NoProductionModel, prediction_make


class Command(BaseCommand):
    help = (
        "Predict the classes of skin photos with the production model (or --model), validating and sanitizing each "
        "as the predict API does. Runs the model in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="image files")
        parser.add_argument("--model", type=int, help="model version id (default: the production model)")
        parser.add_argument("--top-k", type=int, default=3, help="classes to show per image (default 3)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(self, *args, paths: list[str], model: int | None, top_k: int, as_json: bool, **options):
        version = None
        if model is not None:
            version = ModelVersion.objects.filter(pk=model).first()
            if version is None:
                raise CommandError(f"There is no model version {model}.")
        if not 1 <= top_k <= 11:
            raise CommandError("--top-k must be from 1 to 11.")
        results = []
        for path in paths:
            try:
                data = Path(path).read_bytes()
            except OSError as error:
                results.append({"path": path, "error": f"unreadable: {error.strerror or error}"})
                continue
            try:
                prediction = prediction_make(image=data, top_k=top_k, model_version=version, local=True)
            except NoProductionModel as error:
                raise CommandError("There is no production model; promote one or pass --model ID.") from error
            except ValidationError as error:
                results.append({"path": path, "error": error.messages[0]})
                continue
            results.append({"path": path, **prediction.response})
        if as_json:
            self.stdout.write(json.dumps({"predictions": results}))
        else:
            for result in results:
                if "error" in result:
                    self.stdout.write(self.style.ERROR(f"{result['path']}: {result['error']}"))
                    continue
                ranked = ", ".join(f"{c['name']} {c['probability']:.3f}" for c in result["classes"])
                note = f"  (abstain: {result['abstain_reason']})" if result["abstain"] else ""
                self.stdout.write(f"{result['path']}: {ranked}{note}")
        if any("error" in result for result in results):
            raise CommandError(f"{sum('error' in r for r in results)} of {len(results)} image(s) were refused.")
