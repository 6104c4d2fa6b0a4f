from axes.models import AccessAttempt
from django.contrib import admin

from accounts.roles import Role
from accounts.selectors import user_has_role
from accounts.services import login_unlock


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


@admin.register(AccessAttempt)
class LoginLockoutAdmin(CuratorReadOnlyAdmin):
    """Failed logins within the lockout window (django-axes); curators unlock from here."""

    list_display = ("username", "ip_address", "failures_since_start", "attempt_time", "path_info")
    search_fields = ("username", "ip_address")
    ordering = ("-attempt_time",)
    fields = list_display
    actions = ["unlock_usernames", "unlock_addresses"]

    @admin.action(description="Unlock the selected usernames")
    def unlock_usernames(self, request, queryset):
        usernames = sorted({name for name in queryset.values_list("username", flat=True) if name})
        cleared = sum(login_unlock(username=name, actor=request.user) for name in usernames)
        self.message_user(request, f"Unlocked {', '.join(usernames) or 'nobody'} ({cleared} record(s) cleared).")

    @admin.action(description="Unlock the selected addresses")
    def unlock_addresses(self, request, queryset):
        addresses = sorted({ip for ip in queryset.values_list("ip_address", flat=True) if ip})
        cleared = sum(login_unlock(address=ip, actor=request.user) for ip in addresses)
        self.message_user(request, f"Unlocked {', '.join(addresses) or 'nothing'} ({cleared} record(s) cleared).")
