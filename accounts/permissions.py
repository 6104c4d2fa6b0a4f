"""Role checks for API views (DRF) and pages (Django views)."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from accounts.roles import Role
from accounts.selectors import user_has_role


def has_role(*roles: str) -> type[BasePermission]:
    """A DRF permission class that admits authenticated users holding one of `roles`."""

    class HasRole(BasePermission):
        message = f"This needs the role {' or '.join(roles)}."

        def has_permission(self, request, view) -> bool:
            return bool(request.user and request.user.is_authenticated) and user_has_role(request.user, *roles)

    HasRole.__name__ = f"HasRole_{'_'.join(roles)}"
    return HasRole


IsCurator = has_role(Role.CURATOR)
IsReader = has_role(Role.REVIEWER, Role.ADJUDICATOR)
IsAdjudicator = has_role(Role.ADJUDICATOR)
IsExporter = has_role(Role.CURATOR, Role.EXPORTER)
CanPredict = has_role(Role.PREDICTOR, Role.CURATOR)
HasAnyRole = has_role(*Role.values)


def role_required(*roles: str) -> Callable:
    """Page decorator: anonymous → login redirect; signed in without the role → 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_has_role(request.user, *roles):
                raise PermissionDenied(f"This page needs the role {' or '.join(roles)}.")
            return view(request, *args, **kwargs)

        wrapped.required_roles = roles
        return wrapped

    return decorator
