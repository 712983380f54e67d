from django.urls import path

from . import views

app_name = "frontend"

urlpatterns = [
    path("", views.home, name="home"),
    path("workspaces/new/", views.workspace_new, name="workspace_new"),
    path("workspaces/<str:workspace_id>/", views.workspace_page, name="workspace"),
    path("healthz", views.healthz, name="healthz"),
]
