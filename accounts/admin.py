from django.contrib import admin

from .models import Agency, IdentityKey, Invitation, Professional


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]


class IdentityKeyInline(admin.TabularInline):
    model = IdentityKey
    fields = ["version", "created_at", "replaced_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Professional)
class ProfessionalAdmin(admin.ModelAdmin):
    """Site administrators edit names, titles and roles here. Passwords and keys are not editable: they
    are made in the owner's browser. Offboarding goes through the agency pages, so it is audited."""

    list_display = ["full_name", "email", "agency", "job_title", "role", "is_agency_admin", "is_active"]
    list_filter = ["agency", "role", "is_agency_admin", "is_active"]
    search_fields = ["full_name", "email"]
    fields = ["email", "full_name", "job_title", "agency", "role", "is_agency_admin", "is_staff", "is_active",
              "needs_rekey", "date_joined", "offboarded_at", "last_login"]
    readonly_fields = ["is_active", "needs_rekey", "date_joined", "offboarded_at", "last_login"]
    inlines = [IdentityKeyInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        from audit.services import audit_record

        super().save_model(request, obj, form, change)
        audit_record(kind="account.changed", actor=request.user, request=request, target=obj,
                     data={"fields": sorted(form.changed_data)})


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "agency", "invited_by", "created_at", "expires_at", "state"]
    list_filter = ["agency"]
    readonly_fields = [f.name for f in Invitation._meta.fields]

    def has_add_permission(self, request):
        return False
