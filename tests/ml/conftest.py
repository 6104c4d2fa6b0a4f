import io

import pytest
from django.core.management import call_command

from curation.demo_images import write_demo_dataset
from curation.models import Image
from curation.services.images import image_set_label
from curation.services.snapshots import snapshot_create

# Small and quick: one epoch per stage at the tiny preset's 32 px.
QUICK = {"stage1_epochs": 1, "stage2_epochs": 1, "batch_size": 4}


@pytest.fixture
def trainable_snapshot(tmp_path):
    """A real snapshot of imported, labeled pictures of three classes (files in storage)."""
    write_demo_dataset(tmp_path / "set", per_class=8, size=(64, 48), classes=[1, 2, 5])
    call_command("import_images", str(tmp_path / "set"), "--source", "demo", stdout=io.StringIO())
    for image in Image.objects.select_related("source_label"):
        image_set_label(image=image, label=image.source_label, actor=None, action="test")
    return snapshot_create(name="train-me", ratios=[0.5, 0.25, 0.25])
