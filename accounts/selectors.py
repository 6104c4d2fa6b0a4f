from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from accounts.roles import Role


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The role names of a user, cached on the user object for the request.

    Superusers hold every role; inactive or anonymous users hold none.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_dermcurate_roles", None)
    if cached is None:
        if user.is_superuser:
            cached = frozenset(Role.values)
        else:
            cached = frozenset(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
        user._dermcurate_roles = cached
    return cached


def user_has_role(user: AbstractBaseUser | AnonymousUser, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))
