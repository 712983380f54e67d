"""Playwright against a live daphne serving the real ASGI application on the test database.

Debian's /usr/bin/chromium, headless, with the flags that keep it off the (closed) network. The daphne
process is forked once per session after the test database exists; tests use `transactional_db` so
what they create is committed and visible to it."""

from __future__ import annotations

import os
from functools import partial

import pytest
from daphne.testing import DaphneProcess
from django.db import connections

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


def _application():
    from teamaroundchild.asgi import application

    return application


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, django_db_blocker):
    process = DaphneProcess("127.0.0.1", partial(_application))
    # pytest-django blocks database access outside tests by patching the connection class; a forked
    # child keeps whatever state the parent had, so fork while unblocked or the server cannot query.
    with django_db_blocker.unblock():
        connections.close_all()  # the child must not share the parent's sockets
        process.start()
    while not process.ready.wait(timeout=1):
        if not process.is_alive():
            raise RuntimeError(f"daphne did not start: {process.errors.get_nowait() if not process.errors.empty() else ''}")
    yield f"http://127.0.0.1:{process.port.value}"
    process.terminate()
    process.join(timeout=10)


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
