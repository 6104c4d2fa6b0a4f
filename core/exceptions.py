"""Errors that services raise and every interface answers the same way."""

from django.core.exceptions import ValidationError


class Conflict(ValidationError):
    """The request is well formed but clashes with the current state (the API answers 409)."""
