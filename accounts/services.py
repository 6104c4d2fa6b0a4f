from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.roles import Role


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
    user, created = user_model.objects.get_or_create(username=username)
    if password:
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
