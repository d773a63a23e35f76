from django.contrib import admin

from accounts.models import ApiToken


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
