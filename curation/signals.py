"""Signals the curation layer sends so that upper layers can react without being imported."""

from django.dispatch import Signal

# kwargs: image_ids (list[int]) — images created by an import, for consensus on trusted sources
images_imported = Signal()
