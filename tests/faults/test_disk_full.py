"""The media disk fills up during an import: the batch fails with "no space left", leaves no row
without its files (nor files without a row), and what was imported before stays intact."""

import hashlib
import io
import subprocess

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image as PILImage

from curation.models import Image, ImportBatch
from curation.services import storage
from tests.samples import lesion_jpeg, write_files

MEDIA_BYTES = 1536 * 1024


def _photo(seed: int) -> bytes:
    """A 1600×1200 photo of noise (it does not compress): about 1 MB as a JPEG."""
    noise = PILImage.effect_noise((1600, 1200), 60 + seed).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture
def small_media_disk(tmp_path, settings):
    mount_point = tmp_path / "media"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={MEDIA_BYTES}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs as MEDIA_ROOT here (root with mount rights needed): {mounted.stderr}")
    settings.MEDIA_ROOT = mount_point
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _digest(name: str) -> str:
    with default_storage.open(name, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.mark.django_db
def test_a_full_disk_fails_the_import_cleanly_and_keeps_what_was_imported(small_media_disk, tmp_path):
    first = write_files(tmp_path / "first", {f"1. Eczema/{n}.jpg": lesion_jpeg(1, seed=n) for n in range(3)})
    call_command("import_images", str(first), "--source", "first", stdout=io.StringIO())
    before = {
        image.pk: {name: _digest(name) for name in (image.original.name, image.sanitized.name, image.thumbnail.name)}
        for image in Image.objects.all()
    }
    assert len(before) == 3
    big = write_files(tmp_path / "big", {f"2. Melanoma 15.75k/{n}.jpg": _photo(n) for n in range(6)})

    with pytest.raises(Exception, match="No space left"):
        call_command("import_images", str(big), "--source", "big", stdout=io.StringIO())

    batch = ImportBatch.objects.get(source__name="big")
    assert batch.status == "failed"
    assert batch.error.startswith("No space left on the device")
    images = list(Image.objects.all())
    for image in images:  # no row without its files
        for name in (image.original.name, image.sanitized.name, image.thumbnail.name):
            assert default_storage.exists(name), name
    known = {image.sha256 for image in images}
    assert {sha256 for sha256, _ in storage.content_file_names()} <= known, "no file left without its row"
    after = {
        image.pk: {name: _digest(name) for name in (image.original.name, image.sanitized.name, image.thumbnail.name)}
        for image in images
        if image.pk in before
    }
    assert after == before
