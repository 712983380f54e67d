# The two commands (README.md): `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test install browser nginx services check lint vendor-check

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

install: $(VENV)/.installed

# A random SECRET_KEY for this checkout, made once. Never committed (.gitignore).
.env:
	$(PYTHON) -c 'import secrets; print("SECRET_KEY=" + secrets.token_urlsafe(50))' > .env
	chmod 600 .env

run: install .env
	DJANGO_SETTINGS_MODULE=teamaroundchild.settings.dev $(PY) manage.py migrate --noinput
	DJANGO_SETTINGS_MODULE=teamaroundchild.settings.dev $(PY) manage.py seed_demo
	@echo "Serving on http://127.0.0.1:8000, with a background worker (Ctrl-C stops both)"
	DJANGO_SETTINGS_MODULE=teamaroundchild.settings.dev $(PY) manage.py tac_worker & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  DJANGO_SETTINGS_MODULE=teamaroundchild.settings.dev $(VENV)/bin/daphne -b 127.0.0.1 -p 8000 teamaroundchild.asgi:application

# Debian's Chromium for the Playwright tests (Playwright's own browser download cannot reach the network).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "Install Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

# Debian's nginx for the test that runs the deployed shape (tests/browser/test_deploy_shape.py), which starts
# its own nginx process. The package enables (and, where allowed, starts) the system service on port 80;
# that is not wanted on a machine that has nginx only for the tests, so it is stopped and disabled again.
# /usr/sbin may not be on PATH.
nginx:
	@test -x /usr/sbin/nginx || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx && \
	    { { systemctl stop nginx; systemctl disable --quiet nginx; } 2>/dev/null || true; }; \
	  else echo "Install Debian's nginx: sudo apt-get install nginx" >&2; exit 1; fi; }

services:
	bash deploy/local/ensure-services.sh

test: install browser nginx services
	DJANGO_SETTINGS_MODULE=teamaroundchild.settings.test $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; exit 1; fi; exit $$rc

lint: install
	$(VENV)/bin/ruff check .

vendor-check:
	$(PY) frontend/vendor/refresh.py --check
