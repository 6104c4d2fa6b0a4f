"""factory_boy factories; conftest.py exposes them as fixtures."""

import hashlib
import itertools

import factory

from curation.models import Image, ImageSource, ImportBatch, LabelClass, Source

_counter = itertools.count()


def _sha(n: int) -> str:
    return hashlib.sha256(f"image-{n}".encode()).hexdigest()


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source
        django_get_or_create = ("name",)

    name = "kaggle"
    trusted = False


class ImportBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImportBatch

    source = factory.SubFactory(SourceFactory)
    status = ImportBatch.Status.SUCCEEDED


class ImageFactory(factory.django.DjangoModelFactory):
    """An image row without files (for rules that never open a file)."""

    class Meta:
        model = Image
        skip_postgeneration_save = True

    sha256 = factory.LazyFunction(lambda: _sha(next(_counter)))
    original = factory.LazyAttribute(lambda o: f"originals/{o.sha256[:2]}/{o.sha256[2:4]}/{o.sha256}.jpg")
    sanitized = factory.LazyAttribute(lambda o: f"images/{o.sha256[:2]}/{o.sha256[2:4]}/{o.sha256}.jpg")
    thumbnail = factory.LazyAttribute(lambda o: f"thumbnails/{o.sha256[:2]}/{o.sha256[2:4]}/{o.sha256}.jpg")
    original_format = "JPEG"
    file_size = 1000
    width = height = 600
    sanitized_width = sanitized_height = 600
    phash = factory.Sequence(lambda n: (n * 0x9E3779B97F4A7C15) % (1 << 63))
    dhash = factory.Sequence(lambda n: (n * 0xC2B2AE3D27D4EB4F) % (1 << 63))

    @factory.post_generation
    def source_code(self, create, extracted, **kwargs):
        """source_code="eczema" (and source_trusted=True) adds a provenance row."""
        if not extracted:
            return
        label = LabelClass.objects.get(code=extracted)
        source = SourceFactory(name=kwargs.get("name", "kaggle"), trusted=kwargs.get("trusted", False))
        batch = ImportBatchFactory(source=source)
        ImageSource.objects.create(
            image=self,
            batch=batch,
            source=source,
            source_label=label,
            source_path=f"{label.code}/{self.sha256[:8]}.jpg",
        )
        self.source_label = label
        self.save(update_fields=["source_label"])
