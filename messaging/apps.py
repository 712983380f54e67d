from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Workspaces and the live thread"

    def ready(self):
        from accounts.signals import professional_offboarded, sessions_revoked

        from . import handlers

        professional_offboarded.connect(handlers.on_professional_offboarded, dispatch_uid="messaging.offboarded")
        sessions_revoked.connect(handlers.on_sessions_revoked, dispatch_uid="messaging.sessions_revoked")
