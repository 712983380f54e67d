from django.contrib import admin
from django.urls import include, path
from django_otp.admin import OTPAdminSite

# The Django admin is for site administrators, and only after 2FA (Require2FAMiddleware enforces it for
# every view; OTPAdminSite checks it again).
admin.site.__class__ = OTPAdminSite
admin.site.site_header = "Team Around the Child administration"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    # The notification pages (/notifications) and their API (/api/v1/notifications).
    path("", include("notifications.urls")),
    path("api/v1/", include("messaging.urls")),
    path("oversight/", include("oversight.urls")),
    path("", include("frontend.urls")),
]

# Errors under /api/ and /accounts/api/ answer in the API's JSON error shape (messaging/views.py);
# elsewhere the service's pages, frontend/templates/404.html, 403.html and 500.html.
handler404 = "messaging.views.not_found"
handler403 = "messaging.views.forbidden"
handler500 = "messaging.views.server_error"
# So do bodies over DATA_UPLOAD_MAX_MEMORY_SIZE, under /api/ and /accounts/api/.
handler400 = "messaging.views.bad_request"
