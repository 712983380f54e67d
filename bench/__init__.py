"""Benchmarks of the live path (websocket /ws/, real crypto, PostgreSQL, Redis). See bench/README.md."""
