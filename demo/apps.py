from django.apps import AppConfig


class DemoConfig(AppConfig):
    """`manage.py seed_demo`: the quick start's demonstration, which acts across every app (accounts,
    workspaces, posts, clocks, notifications) as real professionals' clients would."""

    name = "demo"
    verbose_name = "Demonstration data"
