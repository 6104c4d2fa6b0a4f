"""The roles of DermCurate, kept as Django groups (created by a migration)."""

from django.db import models


class Role(models.TextChoices):
    REVIEWER = "reviewer", "Reviewer (dermatologist)"
    ADJUDICATOR = "adjudicator", "Adjudicator (senior dermatologist)"
    CURATOR = "curator", "Curator (admin / ML engineer)"
    EXPORTER = "exporter", "Exporter (read-only API client)"
    PREDICTOR = "predictor", "Predictor (tele-dermatology client app: the predict API only)"


# Who may read images in the review queue: adjudicators review too.
READER_ROLES = frozenset({Role.REVIEWER, Role.ADJUDICATOR})
# Who may see any served image file (sanitized or thumbnail).
IMAGE_VIEWER_ROLES = frozenset({Role.REVIEWER, Role.ADJUDICATOR, Role.CURATOR, Role.EXPORTER})
