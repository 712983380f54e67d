from django.urls import path

from . import views

app_name = "notifications"

# Every notification email links to /notifications (no slash): both spellings answer, neither redirects.
urlpatterns = [
    path("notifications", views.notification_list, name="list"),
    path("notifications/", views.notification_list),
    path("notifications/read", views.notifications_read, name="read"),
    path("notifications/settings", views.notification_settings, name="settings"),
    path("notifications/settings/", views.notification_settings),
    path("api/v1/notifications", views.api_notifications, name="api_list"),
    path("api/v1/notifications/read", views.api_notifications_read, name="api_read"),
]
