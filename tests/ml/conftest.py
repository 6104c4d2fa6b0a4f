import pytest

from tests.samples import labeled_demo_snapshot

# Small and quick: one epoch per stage at the tiny preset's 32 px.
QUICK = {"stage1_epochs": 1, "stage2_epochs": 1, "batch_size": 4}


@pytest.fixture
def trainable_snapshot(tmp_path):
    """A real snapshot of imported, labeled pictures of three classes (files in storage)."""
    return labeled_demo_snapshot(
        tmp_path / "set", name="train-me", per_class=8, size=(64, 64), classes=[1, 2, 5], ratios=[0.5, 0.25, 0.25]
    )
