from django.contrib import admin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.admin import ReadOnlyAdmin

from . import services
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
    """Site administrators edit names, titles, roles and email addresses here; every save is audited and
    a changed address is told to the old one. Passwords and keys are not editable: they are made in the
    owner's browser. Offboarding goes through the agency pages, so it is audited."""

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
        services.professional_admin_change(site_admin=request.user, professional=obj,
                                           changed_fields=form.changed_data, request=request)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "agency", "invited_by", "created_at", "expires_at", "state"]
    list_filter = ["agency"]
    readonly_fields = [f.name for f in Invitation._meta.fields]

    def has_add_permission(self, request):
        return False


# django-otp's own admin classes show (and edit) a TOTP key, its QR code and the backup codes: a site
# administrator could copy a colleague's second factor and, with a password reset, take the account.
# These replace them: which devices an account has, read only. A lost authenticator is reset by the
# agency administrator (accounts.services.two_factor_reset), which is audited.
class SecondFactorDeviceAdmin(ReadOnlyAdmin):
    list_display = ["user", "name", "confirmed"]
    list_filter = ["confirmed"]
    search_fields = ["user__email", "user__full_name"]
    fields = ["user", "name", "confirmed"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


for device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(device_model):
        admin.site.unregister(device_model)
    admin.site.register(device_model, SecondFactorDeviceAdmin)
