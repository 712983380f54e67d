from django.urls import path

from . import views

app_name = "messaging"

urlpatterns = [
    path("me", views.me, name="me"),
    path("me/state", views.my_state, name="my_state"),
    path("me/work", views.my_work, name="my_work"),
    path("directory", views.directory, name="directory"),
    path("custodian", views.custodian, name="custodian"),
    path("workspaces", views.workspaces, name="workspaces"),
    path("workspaces/<str:workspace_id>", views.workspace_detail, name="workspace"),
    path("workspaces/<str:workspace_id>/posts", views.posts, name="posts"),
    path("workspaces/<str:workspace_id>/members", views.members, name="members"),
    path("workspaces/<str:workspace_id>/membership/<str:action>", views.membership, name="membership"),
    path("workspaces/<str:workspace_id>/epochs", views.epochs, name="epochs"),
    path("workspaces/<str:workspace_id>/rekey", views.rekey, name="rekey"),
    path("workspaces/<str:workspace_id>/history", views.history, name="history"),
    path("workspaces/<str:workspace_id>/key-confirmations", views.key_confirmations, name="key_confirmations"),
    path("workspaces/<str:workspace_id>/actions", views.action_list, name="actions"),
    path("workspaces/<str:workspace_id>/read", views.read_position, name="read"),
    path("workspaces/<str:workspace_id>/status", views.status, name="status"),
]
