"""Settings live in base.py; dev.py, test.py and production.py adjust it for where it runs."""
