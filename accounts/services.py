from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.roles import Role
from core.services.audit import audit_record


@transaction.atomic
def user_create_or_update(*, username: str, role: str, password: str | None = None) -> tuple[AbstractUser, bool]:
    """Create a user with a role, or give an existing user that role (and password).

    Returns the user and whether it was created. Other roles the user holds are kept.
    """
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}. Known roles: {', '.join(Role.values)}.")
    username = username.strip()
    if not username:
        raise ValidationError("The username must not be empty.")
    user_model = get_user_model()
    # The model's own rules (letters, digits and @.+-_ in any script; no control characters):
    # get_or_create below would not run them.
    username_field = user_model._meta.get_field(user_model.USERNAME_FIELD)
    username_field.run_validators(username)
    user, created = user_model.objects.get_or_create(username=username)
    if password:
        # AUTH_PASSWORD_VALIDATORS: too short, too common, all digits, too like the username.
        validate_password(password, user=user)
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.is_active = True
    if role == Role.CURATOR:
        # Curators run the admin site too.
        user.is_staff = True
    user.save()
    user.groups.add(Group.objects.get(name=role))
    return user, created


@transaction.atomic
def login_unlock(*, username: str = "", address: str = "", actor=None) -> int:
    """End the login lockout of a username and/or an address; returns how many lockout records went.

    Unlocking a username clears its failures from every address, so that the user can sign in again.
    """
    username, address = username.strip(), address.strip()
    if not (username or address):
        raise ValidationError("Give a username or an address to unlock.")
    cleared = 0
    if username:
        cleared += axes_reset(username=username)
    if address:
        cleared += axes_reset(ip=address)
    audit_record(
        actor=actor,
        action="login_unlocked",
        target=f"user:{username}" if username else f"address:{address}",
        after={"username": username, "address": address, "records_cleared": cleared},
    )
    return cleared


def login_lockouts():
    """Lockout records (failed logins within the window), newest first."""
    return AccessAttempt.objects.order_by("-attempt_time")
