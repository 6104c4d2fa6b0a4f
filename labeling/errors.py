"""Errors of the review services that the API answers with their own status."""

from core.exceptions import Conflict

NOT_IN_QUEUE = "This image is not in your queue."


class ReviewConflict(Conflict):
    """The request names an image the reader does not hold (the API answers 409 Conflict)."""
