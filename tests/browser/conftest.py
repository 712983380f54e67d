"""Playwright against a live daphne serving the real ASGI application on the test database.

Debian's /usr/bin/chromium, headless, with the flags that keep it off the (closed) network. The daphne
process is forked once per session after the test database exists; tests use `transactional_db` so
what they create is committed and visible to it."""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser(live_server_url):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, and Django then refuses ORM calls from
    # the test body. They are synchronous and safe here. Set only after daphne has forked, so the
    # server itself keeps Django's check.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server_url, transactional_db):
    """A factory of pages, each in its own browser context (its own cookies and sessionStorage)."""
    contexts = []

    def make(**context_options):
        context = browser.new_context(base_url=live_server_url, **context_options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture(autouse=True)
def _server_quiet_before_flush(transactional_db):
    """After the pages close (new_page's teardown runs first), wait for the server's last statements to
    finish: a page's request still in a transaction (a post, a saved state) deadlocks with the TRUNCATE
    that empties the database after each test."""
    yield
    with connection.cursor() as cursor:
        for _ in range(50):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND state <> 'idle'")
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)
