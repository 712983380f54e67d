"""Django's PostgreSQL backend with one change to its connection health check (base.py)."""
