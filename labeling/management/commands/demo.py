"""python manage.py demo — demo logins and a small drawn image set with some review history."""

import io
import json
import random
import secrets

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.roles import Role
from accounts.services import user_create_or_update
from curation.demo_images import write_demo_dataset
from curation.models import Image, LabelClass, Snapshot, Source
from curation.services.snapshots import snapshot_create
from labeling.models import Review
from labeling.services.queue import review_lease_take
from labeling.services.reviews import review_submit

DEMO_SOURCE = "demo-atlas"
# People you can sign in as, and two simulated colleagues whose earlier work fills the pages.
LOGINS = [("ana", Role.REVIEWER), ("ben", Role.REVIEWER), ("carla", Role.ADJUDICATOR), ("curator", Role.CURATOR)]
COLLEAGUES = ["dr.demo-1", "dr.demo-2"]
# 80 per class: with three quarters agreed on, demo-v1 holds about 530 training images, enough for the `tiny`
# preset to learn the drawings from scratch (bench/demo_train.py; with 60 per class, about 390 training images,
# macro F1 still swung between 0.72 and 0.92 with the training seed), and about 6 test images a class.
DEFAULT_PER_CLASS = 80
# Shares of the simulated colleagues' history, in the order the pictures are dealt out; the rest wait for review.
AGREED_SHARE, DISPUTED_SHARE, UNJUDGEABLE_SHARE = 0.75, 0.08, 0.03


class Command(BaseCommand):
    help = "Create demo users (one per role) and a small generated image set with some review history."

    def add_arguments(self, parser):
        parser.add_argument(
            "--per-class",
            type=int,
            default=DEFAULT_PER_CLASS,
            help=f"pictures drawn per class (default {DEFAULT_PER_CLASS})",
        )
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON summary object last")

    def handle(self, *args, per_class: int, as_json: bool, **options):
        if not 1 <= per_class <= 1000:
            raise CommandError("--per-class must lie between 1 and 1000.")
        # With --json, the JSON object is all that is printed.
        out = io.StringIO() if as_json else self.stdout
        logins = self._logins()
        imported = 0
        if not Source.objects.filter(name=DEMO_SOURCE).exists():
            folder = settings.VAR_DIR / "demo-images"
            out.write(f"Drawing {per_class * 11} demo pictures into {folder} ...\n")
            write_demo_dataset(folder, per_class=per_class, size=(600, 450), seed=2026)
            before = Image.objects.count()
            call_command("import_images", str(folder), "--source", DEMO_SOURCE, stdout=out)
            imported = Image.objects.count() - before
            out.write(self._review_history() + "\n")
        snapshot = None
        if not Snapshot.objects.exists() and Image.objects.labeled().count() >= 20:
            snapshot = snapshot_create(name="demo-v1", seed=0)
            out.write(f"Froze snapshot {snapshot.name!r} with {snapshot.item_count} images.\n")
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "logins": [
                            {"username": username, "role": role, "password": logins[username]}
                            for username, role in LOGINS
                        ],
                        "logins_file": str(settings.VAR_DIR / "demo_logins.json"),
                        "imported": imported,
                        "snapshot": snapshot.name if snapshot else None,
                        "images": {
                            "labeled": Image.objects.labeled().count(),
                            "disputed": Image.objects.disputed().count(),
                            "excluded": Image.objects.excluded().count(),
                            "pending": Image.objects.pending().count(),
                        },
                    }
                )
            )
            return
        self.stdout.write(self.style.SUCCESS("\nDemo logins (also in var/demo_logins.json):"))
        for username, role in LOGINS:
            self.stdout.write(f"  {role:<12} {username:<10} password: {logins[username]}")

    def _logins(self) -> dict[str, str]:
        path = settings.VAR_DIR / "demo_logins.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        for username, role in LOGINS:
            saved.setdefault(username, secrets.token_urlsafe(9))
            user_create_or_update(username=username, role=role, password=saved[username])
        for username in COLLEAGUES:
            user_create_or_update(username=username, role=Role.REVIEWER)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=2))
        path.chmod(0o600)
        return saved

    @transaction.atomic
    def _review_history(self) -> str:
        """Most pictures agreed on, a few disputed or unjudgeable, the rest waiting for you."""
        from django.contrib.auth import get_user_model

        first, second = (get_user_model().objects.get(username=name) for name in COLLEAGUES)
        codes = list(LabelClass.objects.order_by("index").values_list("code", flat=True))
        rng = random.Random(2026)
        images = list(
            Image.objects.filter(provenance__source__name=DEMO_SOURCE, status="pending")
            .select_related("source_label")
            .order_by("pk")
        )
        rng.shuffle(images)
        for n, image in enumerate(images):
            if Review.objects.filter(image=image).exists():
                continue
            share = n / len(images)
            truth = image.source_label.code
            if share < AGREED_SHARE:
                decisions = [{"label_code": truth}, {"label_code": truth}]
            elif share < AGREED_SHARE + DISPUTED_SHARE:
                decisions = [{"label_code": truth}, {"label_code": rng.choice([c for c in codes if c != truth])}]
            elif share < AGREED_SHARE + DISPUTED_SHARE + UNJUDGEABLE_SHARE:
                decisions = [{"cannot_judge": True, "reason": "blurry"}] * 2
            else:
                continue  # left for the demo readers
            for reader, decision in zip((first, second), decisions, strict=True):
                review_lease_take(reader=reader, image=image)  # as the queue would give it to them
                review_submit(reader=reader, image_id=image.pk, seconds_spent=round(rng.uniform(2, 9), 1), **decision)
        return (
            f"Simulated colleagues' reviews: {Image.objects.labeled().count()} labeled, "
            f"{Image.objects.disputed().count()} disputed, {Image.objects.excluded().count()} excluded, "
            f"{Image.objects.pending().count()} waiting for review."
        )
