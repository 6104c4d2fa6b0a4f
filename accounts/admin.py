from django.contrib import admin

from accounts.roles import Role
from accounts.selectors import user_has_role


class CuratorReadOnlyAdmin(admin.ModelAdmin):
    """Curators browse everything in the admin; changes go through the product's own pages
    and services, which validate, audit and keep frozen data frozen."""

    def has_module_permission(self, request) -> bool:
        return user_has_role(request.user, Role.CURATOR)

    def has_view_permission(self, request, obj=None) -> bool:
        return user_has_role(request.user, Role.CURATOR)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
