"""`make run`: the quick start. SQLite and the in-memory channel layer unless DATABASE_URL / REDIS_URL say
otherwise. SECRET_KEY still comes from the environment (the Makefile writes a random one into .env)."""

import os

os.environ.setdefault("DEBUG", "True")

from .base import *  # noqa: E402,F403
