from django.urls import path

from . import views

app_name = "oversight"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("workspaces/", views.workspaces, name="workspaces"),
    path("workspaces/<str:reference>/", views.workspace, name="workspace"),
    path("export.csv", views.export, name="export"),
]
