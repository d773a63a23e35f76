from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q
from django.utils import timezone

from accounts import audit, lockout, services, tokens
from accounts.models import ApiToken
from audit.events import Actor
from core.net import client_ip

User = get_user_model()


def _audit(request) -> dict:
    return {"actor": Actor.of(request, "admin"), "ip": client_ip(request)}


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued in the portal, the API or `manage.py create_api_token`.

    Only the hash is stored, so the admin can rename or delete a token but
    never see or set its secret.
    """

    list_display = ["prefix", "name", "user", "created_at", "last_used_at"]
    search_fields = ["prefix", "name", "user__username"]
    list_select_related = ["user"]
    fields = ["user", "name", "prefix", "token_hash", "created_at", "last_used_at"]
    readonly_fields = ["user", "prefix", "token_hash", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        old_name = ApiToken.objects.values_list("name", flat=True).get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        tokens.rename_api_token(obj, old_name, **_audit(request))

    def delete_model(self, request, obj):
        tokens.delete_api_token(obj, **_audit(request))

    def delete_queryset(self, request, queryset):
        for row in queryset.select_related("user"):
            tokens.delete_api_token(row, **_audit(request))


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(auth_admin.UserAdmin):
    """Users with their role: device makers get the console and the management API.

    The role is the `accounts.device_maker` permission, held directly or through a
    group ("Device makers" holds it); the actions put users in or take them out.
    Each of these, and adding, changing what a user may do, setting a password or
    deleting a user, leaves a line naming the admin in the event log.
    """

    list_display = [*auth_admin.UserAdmin.list_display, "device_maker"]
    actions = ["grant_device_maker", "revoke_device_maker", "lift_sign_in_lock"]
    readonly_fields = ["sign_in_lock"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [*fieldsets, ("Sign-in", {"fields": ["sign_in_lock"]})]

    @admin.display(description="Sign-in lock")
    def sign_in_lock(self, user):
        username = user.get_username()
        end = lockout.account_lock_end(username)
        if end is not None:
            what = "Locked after too many failed sign-ins"
        else:
            addresses = lockout.locked_addresses(username)
            if not addresses:
                return "Not locked."
            end = max(addresses.values())
            shown = ", ".join(sorted(str(address) for address in addresses)[:5])
            what = (
                f"Locked from {len(addresses)} address(es) ({shown}) after too many "
                "failed sign-ins from them; other addresses may sign in"
            )
        minutes = max(1, -(-int((end - timezone.now()).total_seconds()) // 60))
        return (
            f"{what}; lifts by itself in {minutes} min, "
            "or now with the user list's action “Lift the sign-in lock…”."
        )

    @admin.action(description="Lift the sign-in lock of the selected users", permissions=["change"])
    def lift_sign_in_lock(self, request, queryset):
        for user in queryset:
            lockout.lift_lock(user.get_username(), **_audit(request))
        self.message_user(request, "Failed sign-ins of the selected users are forgotten.")

    def get_queryset(self, request):
        # One query for the whole page, instead of two permission lookups per row.
        permission = Permission.objects.filter(
            content_type__app_label="accounts", codename=services.DEVICE_MAKER_CODENAME
        )
        maker = Q(is_active=True) & (
            Q(is_superuser=True)
            | Q(Exists(permission.filter(group__user=OuterRef("pk"))))
            | Q(Exists(permission.filter(user=OuterRef("pk"))))
        )
        return (
            super()
            .get_queryset(request)
            .annotate(is_device_maker=ExpressionWrapper(maker, output_field=BooleanField()))
        )

    @admin.display(boolean=True, description="Device maker", ordering="is_device_maker")
    def device_maker(self, user):
        return user.is_device_maker

    @admin.action(description="Make the selected users device makers", permissions=["change"])
    def grant_device_maker(self, request, queryset):
        granted = 0
        for user in queryset:
            if services.grant_device_maker(user):
                granted += 1
                self.log_change(request, user, "Granted the device maker role.")
                audit.log_role_granted(user, **_audit(request))
        self.message_user(request, f"{granted} user(s) became device makers.")

    @admin.action(
        description="Take the device maker role from the selected users", permissions=["change"]
    )
    def revoke_device_maker(self, request, queryset):
        kept = []
        for user in queryset:
            still = services.revoke_device_maker(user)
            if user.is_device_maker:
                self.log_change(request, user, "Took the device maker role away.")
                audit.log_role_revoked(user, still, **_audit(request))
            if still:
                kept.append(f"{user.get_username()} ({', '.join(still)})")
        if kept:
            self.message_user(
                request,
                "Still device makers: " + "; ".join(kept) + ". Change that on their pages.",
                messages.WARNING,
            )
        else:
            self.message_user(request, "The selected users are no longer device makers.")

    def save_model(self, request, obj, form, change):
        # Access as it was, compared in save_related once groups and permissions are saved.
        form.access_before = audit.access_of(User.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        audit.log_user_saved(form.instance, form.access_before, **_audit(request))

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            audit.log_password_set(User.objects.get(pk=id), **_audit(request))
        return response

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit.log_user_deleted(obj, **_audit(request))
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            self.delete_model(request, user)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(auth_admin.GroupAdmin):
    """Groups hand out permissions, the device maker role among them: changes are logged."""

    def save_model(self, request, obj, form, change):
        form.permissions_before = (
            audit.permissions_of(Group.objects.get(pk=obj.pk)) if change else None
        )
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        audit.log_group_saved(form.instance, form.permissions_before, **_audit(request))

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit.log_group_deleted(obj, **_audit(request))
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for group in queryset:
            self.delete_model(request, group)


admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin):
    """Failed sign-ins being counted (accounts/lockout.py). Deleting rows lifts the
    locks they made and leaves a line naming the admin in the event log."""

    @admin.action(description="Clean up expired attempts", permissions=["delete"])
    def cleanup_expired_attempts(self, request, queryset):
        count = lockout.forget_expired_attempts(request, **_audit(request))
        self.message_user(request, f"Cleaned up {count} expired access attempts.")

    def delete_model(self, request, obj):
        lockout.forget_attempts([obj], **_audit(request))

    def delete_queryset(self, request, queryset):
        lockout.forget_attempts(queryset, **_audit(request))


class SignInHistoryAdmin:
    """Axes' history of sign-ins: evidence, so shown and never edited or deleted here."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(AccessLog)
admin.site.unregister(AccessFailureLog)


@admin.register(AccessLog)
class AccessLogAdmin(SignInHistoryAdmin, axes_admin.AccessLogAdmin):
    pass


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(SignInHistoryAdmin, axes_admin.AccessFailureLogAdmin):
    pass
