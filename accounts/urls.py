from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("sign-in/", views.sign_in, name="login"),
    path("sign-out/", views.sign_out, name="logout"),
    path("sign-out-everywhere/", views.sign_out_everywhere, name="sign_out_everywhere"),
    path("two-factor/", views.two_factor, name="two_factor"),
    path("two-factor/set-up/", views.two_factor_enrol, name="two_factor_enrol"),
    path("two-factor/check-again/", views.reverify, name="reverify"),
    path("two-factor/backup-codes/", views.backup_codes, name="backup_codes"),
    path("two-factor/backup-codes/new/", views.backup_codes_regenerate, name="backup_codes_regenerate"),
    path("account/", views.account, name="account"),
    path("account/password/", views.password_change, name="password_change"),
    path("password-reset/", views.password_reset_request, name="password_reset"),
    path("password-reset/<uidb64>/<token>/", views.password_reset_confirm, name="password_reset_confirm"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("agency/", views.agency, name="agency"),
    path("agency/invite/", views.agency_invite, name="agency_invite"),
    path("agency/invitations/<int:pk>/withdraw/", views.agency_invitation_revoke, name="agency_invitation_revoke"),
    path("agency/staff/<int:pk>/offboard/", views.agency_offboard, name="agency_offboard"),
    path("agency/staff/<int:pk>/reset-two-factor/", views.agency_reset_2fa, name="agency_reset_2fa"),
    path("api/v1/prelogin", views.prelogin, name="api_prelogin"),
    path("api/v1/me/keys", views.api_my_keys, name="api_my_keys"),
    path("api/v1/session", views.api_session_status, name="api_session_status"),
    path("api/v1/session/keep-alive", views.api_session_keep_alive, name="api_session_keep_alive"),
]
