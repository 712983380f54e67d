"""The deployed shape on this machine (deploy/README.md): nginx with TLS in front of two daphne workers, a
task worker, Redis and PostgreSQL, under the production settings, and the lead-and-GP journey in Chromium
through nginx, websockets included.

Everything comes from deploy/ itself, never from a copy: the environment is deploy/env.example with this
run's database, Redis, addresses and paths put in (a setting the test needs that it lacks fails the test);
the deployment's commands are those deploy/README.md's install steps run; each process is the ExecStart
line of its systemd unit; and nginx runs deploy/nginx/tac.conf inside a main config of the test's own (the
part Debian's /etc/nginx/nginx.conf plays), with free ports, a self-signed certificate and paths in a
temporary directory. Accounts are made with `manage.py tac_user`, as the first administrator's is, and set
up their two-factor authentication at first sign-in."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import psycopg
import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from tests.browser.journeys import enrolment_code, enter_code, submit_password

pytestmark = pytest.mark.browser

NGINX = "/usr/sbin/nginx"
DEPLOY = Path(settings.BASE_DIR) / "deploy"
# What the units and the install steps call /srv/tac/app and /srv/tac/venv: this checkout and the venv the
# tests run in.
APP = Path(settings.BASE_DIR)
VENV = Path(sys.prefix)
# systemd's own PATH for services; nothing else of the test's environment reaches the deployment.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A Redis database of its own for the channel layer. (The pub/sub layer's channels are server-wide; the
# test suite's own servers talk on a prefix of their own, settings/test.py.)
REDIS_DB = 11
# Argon2id at the production cost (64 MiB, 3 passes) runs in the browser at every sign-in.
SLOW = 30_000

LEAD = {"email": "sam.okafor@northshire.example", "name": "Sam Okafor", "job": "Social worker",
        "agency": "Northshire Children's Social Care", "kind": "childrens_social_care"}
GP = {"email": "priya.shah@riverside.example", "name": "Dr Priya Shah", "job": "GP",
      "agency": "Riverside Medical Practice", "kind": "gp_practice"}
CHILD = "Robin Ashdown-Vale"
UPDATE = "Home visit done; Robin was at school all week"
REPLY = "Seen at the surgery on Tuesday, weight on track"
# What a client might put in X-Forwarded-For itself: nginx replaces the header, so this never reaches the
# audit trail.
FORGED_ADDRESS = "203.0.113.9"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def replace_in(text: str, old: str, new: str, source: str) -> str:
    """`text` with every `old` replaced; fails if there is none, so a change to a deploy file that this test
    relies on is a failure here rather than a config quietly left pointing at /srv or /etc."""
    if old not in text:
        pytest.fail(f"{source} no longer has {old!r}: this test renders it for a run on one machine; teach it "
                    f"the new form")
    return text.replace(old, new)


def unit_command(name: str, instance: str) -> tuple[list[str], dict[str, str]]:
    """The ExecStart argv and the Environment= values of deploy/systemd/`name`, with %i and the /srv/tac
    paths made this machine's. The unit must read its settings from /etc/tac/env (env.example)."""
    fields: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            fields.setdefault(key.strip(), []).append(value.strip())
    assert fields.get("EnvironmentFile") == ["/etc/tac/env"], f"{name} reads its settings from elsewhere"
    assert fields.get("WorkingDirectory") == ["/srv/tac/app"], f"{name} runs somewhere the test does not know"
    command = fields["ExecStart"][0].replace("%i", instance)
    command = command.replace("/srv/tac/venv/", f"{VENV}/").replace("/srv/tac/app/", f"{APP}/")
    assert "/srv/tac" not in command, f"{name}'s ExecStart names a path the test does not know: {command}"
    environment = dict(item.split("=", 1) for value in fields.get("Environment", []) for item in shlex.split(value))
    return shlex.split(command), environment


def sourced(env_file: Path) -> dict[str, str]:
    """The environment a shell has after `set -a && . /etc/tac/env` (deploy/README.md's install steps):
    the file must parse as shell as well as a systemd EnvironmentFile."""
    result = subprocess.run(["bash", "-c", 'set -a && . "$1" && set +a && exec env -0', "_", str(env_file)],
                            env={"PATH": SYSTEMD_PATH}, capture_output=True, check=False, timeout=30)
    if result.returncode:
        pytest.fail(f"deploy/env.example does not source in a shell: {result.stderr.decode()}")
    pairs = (item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item)
    return {key: value for key, value in pairs if key not in ("PWD", "SHLVL", "_", "OLDPWD")}


class Deployment:
    """The processes of the deployed shape and what they share: a database, a directory, an environment.
    Everything it starts or makes is undone by `stack`, in reverse order."""

    def __init__(self, stack: ExitStack):
        self.stack = stack
        self.dir = Path(tempfile.mkdtemp(prefix="tac-deploy-"))
        stack.callback(shutil.rmtree, self.dir, ignore_errors=True)
        # nginx's workers run as nobody and serve the static files from here.
        self.dir.chmod(0o755)
        (self.dir / "logs").mkdir()
        self.processes: dict[str, subprocess.Popen] = {}
        db = settings.DATABASES["default"]
        self.pg = {"host": db["HOST"] or "127.0.0.1", "port": int(db["PORT"] or 5432), "user": db["USER"] or "postgres",
                   "password": db["PASSWORD"] or None}
        self.database = f"tac_deploy_shape_{os.getpid()}"
        self.http_port, self.https_port = free_ports(2)
        self.origin = f"https://127.0.0.1:{self.https_port}"
        self.password = {LEAD["email"]: secrets.token_urlsafe(12), GP["email"]: secrets.token_urlsafe(12)}

    # --- PostgreSQL ---------------------------------------------------------------------------------------

    def _admin(self, sql: str) -> None:
        with psycopg.connect(dbname="postgres", autocommit=True, **self.pg) as conn:
            conn.execute(sql)

    def create_database(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{self.database}"')
        self.stack.callback(self._admin, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def query(self, sql: str, *params) -> list[tuple]:
        with psycopg.connect(dbname=self.database, **self.pg) as conn:
            return conn.execute(sql, params).fetchall()

    # --- the environment (/etc/tac/env) ---------------------------------------------------------------------

    def write_env(self) -> None:
        """deploy/env.example with this run's values in place of the example's, as /etc/tac/env (mode 600)."""
        credentials = quote(self.pg["user"]) + (f":{quote(self.pg['password'])}" if self.pg["password"] else "")
        redis = urlsplit(settings.REDIS_URL)
        values = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            # nginx passes Host without the port ($host); the browser's Origin has it.
            "CSRF_TRUSTED_ORIGINS": self.origin,
            "DATABASE_URL": f"postgres://{credentials}@{self.pg['host']}:{self.pg['port']}/{self.database}",
            "REDIS_URL": f"redis://{redis.netloc}/{REDIS_DB}",
            # django-environ drops the first character of the path: four slashes make an absolute one.
            "EMAIL_URL": f"filemail:///{self.dir / 'mail'}",
            "STATIC_ROOT": str(self.dir / "staticfiles"),
            "TAC_PIN_DIR": str(self.dir / "pins"),
            "TAC_SITE_URL": self.origin,
        }
        text = (DEPLOY / "env.example").read_text()
        for key, value in values.items():
            setting = re.compile(rf"^{key}=.*$", re.MULTILINE)
            if not setting.search(text):
                pytest.fail(f"deploy/env.example has no {key}=: a deployment could not set it as this test must")
            line = f"{key}={shlex.quote(value)}"
            text = setting.sub(lambda _, line=line: line, text)
        self.env_file = self.dir / "env"
        self.env_file.write_text(text)
        self.env_file.chmod(0o600)
        self.env = {**sourced(self.env_file), "PATH": SYSTEMD_PATH}
        (self.dir / "mail").mkdir()

    # --- the install steps (deploy/README.md) -----------------------------------------------------------------

    def manage(self, *args: str, stdin: str | None = None) -> None:
        env = {**self.env, "DJANGO_SETTINGS_MODULE": "teamaroundchild.settings.production"}
        # A session of its own: no terminal, so tac_user's getpass reads the password from stdin.
        result = subprocess.run([str(VENV / "bin" / "python"), "manage.py", *args], cwd=APP, env=env, input=stdin,
                                capture_output=True, text=True, timeout=300, start_new_session=True, check=False)
        if result.returncode:
            pytest.fail(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def install(self) -> None:
        self.manage("migrate", "--noinput")
        # First installation only: the custodian pin goes out with the static files.
        self.manage("custodian_key_create", "--label", "Deploy shape test", "--quiet")
        self.manage("collectstatic", "--noinput")
        self.manage("check", "--deploy", "--fail-level", "WARNING")
        for person in (LEAD, GP):
            password = self.password[person["email"]]
            self.manage("tac_user", person["email"], "--name", person["name"], "--job-title", person["job"],
                        "--agency", person["agency"], "--agency-kind", person["kind"], stdin=f"{password}\n{password}\n")

    # --- processes ------------------------------------------------------------------------------------------

    def start(self, name: str, argv: list[str], environment: dict[str, str]) -> None:
        log = open(self.dir / "logs" / f"{name}.log", "wb")  # closed when the process is stopped
        process = subprocess.Popen(argv, cwd=APP, env={**self.env, **environment}, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        self.stack.callback(self.stop, name, process, log)

    @staticmethod
    def stop(name: str, process: subprocess.Popen, log) -> None:
        # SIGTERM, as systemd stops them (the worker's unit says so): each finishes what it is doing.
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()

    def logs(self) -> str:
        parts = []
        for path in sorted((self.dir / "logs").glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name} (last 4000 characters) ---\n{text[-4000:]}")
        return "\n".join(parts)

    def wait_until(self, what: str, ready, timeout: float = 60) -> None:
        """Polls `ready` until it is true; fails at once if a process has died, or after `timeout` s. Called
        inside `logs_on_failure`, which shows why."""
        deadline = time.monotonic() + timeout
        while not ready():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    pytest.fail(f"{name} exited ({process.returncode}) while waiting for {what}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what} was not ready after {timeout:g} s")
            time.sleep(0.1)

    @contextmanager
    def logs_on_failure(self):
        """Prints every process's log if the block fails (pytest shows it with the failure)."""
        try:
            yield
        except BaseException:
            print(self.logs())
            raise

    # --- the workers ----------------------------------------------------------------------------------------

    def start_daphnes(self) -> None:
        """One daphne per server of deploy/nginx/tac.conf's upstream, each on a free port as its instance."""
        upstream = re.findall(r"^\s*server 127\.0\.0\.1:(\d+);", (DEPLOY / "nginx" / "tac.conf").read_text(), re.MULTILINE)
        assert len(upstream) == 2, f"deploy/nginx/tac.conf's upstream has {upstream}, not two workers"
        self.daphne_ports = dict(zip(upstream, free_ports(len(upstream)), strict=True))
        for instance in self.daphne_ports.values():
            argv, environment = unit_command("tac-daphne@.service", str(instance))
            self.start(f"daphne@{instance}", argv, environment)
        for instance in self.daphne_ports.values():
            self.wait_until(f"daphne on port {instance}", lambda port=instance: answers(f"http://127.0.0.1:{port}/"))

    def start_worker(self) -> None:
        argv, environment = unit_command("tac-worker@.service", "1")
        self.start("worker@1", argv, environment)
        self.wait_until("the task worker", lambda: self.query("SELECT count(*) FROM procrastinate_workers")[0][0] > 0)

    # --- nginx ----------------------------------------------------------------------------------------------

    def make_certificate(self) -> None:
        self.cert, self.key = self.dir / "fullchain.pem", self.dir / "privkey.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(self.key), "-out", str(self.cert)], check=True, capture_output=True, timeout=30)

    def render_site(self) -> Path:
        """deploy/nginx/tac.conf for this machine. Besides ports and paths, one change: each server also logs
        which worker answered (the `upstreams` format, defined only in the test's main config)."""
        source = "deploy/nginx/tac.conf"
        text = (DEPLOY / "nginx" / "tac.conf").read_text()
        text = replace_in(text, "listen 80;", f"listen 127.0.0.1:{self.http_port};", source)
        text = replace_in(text, "listen 443 ssl", f"listen 127.0.0.1:{self.https_port} ssl", source)
        for deployed, port in self.daphne_ports.items():
            text = replace_in(text, f"server 127.0.0.1:{deployed};", f"server 127.0.0.1:{port};", source)
        text = replace_in(text, "/etc/ssl/tac/fullchain.pem", str(self.cert), source)
        text = replace_in(text, "/etc/ssl/tac/privkey.pem", str(self.key), source)
        text = replace_in(text, "alias /srv/tac/staticfiles/", f"alias {self.dir / 'staticfiles'}/", source)
        logs = self.dir / "logs"
        text = replace_in(text, "access_log /var/log/nginx/tac.access.log tac;",
                          f"access_log {logs}/tac.access.log tac; access_log {logs}/upstreams.access.log upstreams;",
                          source)
        leftover = re.findall(r"/(?:srv|var|etc)/\S*", text)
        assert not leftover, f"{source} names paths this test does not render: {leftover}"
        site = self.dir / "tac.conf"
        site.write_text(text)
        return site

    def start_nginx(self) -> None:
        site = self.render_site()
        logs = self.dir / "logs"
        main = self.dir / "nginx.conf"
        # What Debian's /etc/nginx/nginx.conf is to a deployed site: the http block tac.conf is included into.
        main.write_text(f"""
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {logs}/nginx.error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path {self.dir}/nginx-body;
    proxy_temp_path {self.dir}/nginx-proxy;
    fastcgi_temp_path {self.dir}/nginx-fastcgi;
    uwsgi_temp_path {self.dir}/nginx-uwsgi;
    scgi_temp_path {self.dir}/nginx-scgi;
    # The test's own: which daphne answered each request (nginx logs a websocket when it closes).
    log_format upstreams '$upstream_addr $status $request_method $uri';
    include {site};
}}
""")
        argv = [NGINX, "-p", f"{self.dir}/", "-c", str(main), "-e", str(logs / "nginx.error.log"), "-g", "daemon off;"]
        checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30, check=False)
        if checked.returncode:
            pytest.fail(f"nginx refuses the rendered deploy/nginx/tac.conf:\n{checked.stderr}\n{site.read_text()}")
        self.start("nginx", argv, {})
        self.wait_until("nginx", lambda: answers(f"{self.origin}/accounts/sign-in/"))

    def upstreams(self) -> list[tuple[str, str, str, str]]:
        """(upstream address, status, method, path) per request nginx logged, from the test's log format."""
        lines = (self.dir / "logs" / "upstreams.access.log").read_text().splitlines()
        return [tuple(line.split(" ", 3)) for line in lines]


def answers(url: str) -> bool:
    try:
        httpx.get(url, verify=False, timeout=2)
    except httpx.TransportError:
        return False
    return True


@pytest.fixture(scope="module")
def deployment():
    if not os.path.exists(NGINX):
        pytest.fail(f"{NGINX} is missing: `make test` installs Debian's nginx")
    with ExitStack() as stack:
        deploy = Deployment(stack)
        with deploy.logs_on_failure():
            deploy.create_database()
            deploy.write_env()
            deploy.install()
            deploy.make_certificate()
            deploy.start_daphnes()
            deploy.start_worker()
            deploy.start_nginx()
        yield deploy


def first_sign_in(page: Page, person: dict, password: str) -> None:
    """A new account's first sign-in: password, two-factor set-up with the code an authenticator app would
    show, backup codes, home."""
    submit_password(page, person["email"], password)
    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible(timeout=SLOW)
    enter_code(page, enrolment_code(page))
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    page.get_by_role("link", name="I have saved my backup codes").click()
    expect(page.get_by_role("heading", name=f"Welcome, {person['name']}")).to_be_visible()
    expect(page.locator("[data-tac-key-status]")).to_have_attribute("data-state", "unlocked", timeout=SLOW)


def mark_page(page: Page) -> None:
    """A mark that a reload or navigation would wipe: posts seen while it stands arrived live."""
    page.evaluate("() => { window.tacNotReloaded = true; }")


def still_marked(page: Page) -> bool:
    return page.evaluate("() => window.tacNotReloaded === true")


def post_update(page: Page, text: str) -> None:
    page.get_by_label("Update", exact=True).check()
    page.locator("#post-text").fill(text)
    page.get_by_role("button", name="Post", exact=True).click()


def test_it_runs_the_lead_and_gp_journey_through_nginx(deployment, browser):
    deploy = deployment
    contexts = []

    def new_page(**options) -> Page:
        context = browser.new_context(base_url=deploy.origin, ignore_https_errors=True, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    try:
        with deploy.logs_on_failure():
            journey(deploy, new_page)
    finally:
        for context in contexts:
            context.close()
    with deploy.logs_on_failure():
        shape(deploy)


def journey(deploy: Deployment, new_page) -> None:
    lead = new_page(extra_http_headers={"X-Forwarded-For": FORGED_ADDRESS})
    gp = new_page()

    first_sign_in(lead, LEAD, deploy.password[LEAD["email"]])
    lead.get_by_role("link", name="Open a workspace for a child").click()
    lead.get_by_label("Child's full name").fill(CHILD)
    lead.get_by_role("button", name="Open workspace").click()
    expect(lead.get_by_role("heading", name=CHILD)).to_be_visible()
    workspace_url = lead.url
    lead.get_by_label("Name or agency").fill("Riverside")
    lead.get_by_role("button", name="Search").click()
    lead.get_by_role("button", name=f"Invite {GP['name']}").click()
    expect(lead.locator("[data-tac-invite-results]")).to_contain_text("is invited")
    mark_page(lead)

    first_sign_in(gp, GP, deploy.password[GP["email"]])
    gp_safety_number = gp.locator("[data-tac-safety-number]").inner_text()
    gp.get_by_role("button", name="Accept").click()
    expect(gp.get_by_role("button", name="Accept")).to_have_count(0)

    # The lead's open page hears of the acceptance over its socket; the lead compares the GP's safety
    # number (here, with the GP's own page) and admits them: a new key epoch that includes them.
    admit = lead.locator("[data-tac-member]", has_text="Accepted, waiting to be admitted")
    expect(admit).to_contain_text(gp_safety_number)
    admit.get_by_label("Why they need the earlier record").fill("The GP holds the health record")
    admit.get_by_role("button", name=f"Admit {GP['name']}").click()
    expect(lead.locator(".tac-post", has_text="shared the earlier record")).to_contain_text(
        "The GP holds the health record")

    gp.goto(workspace_url)
    expect(gp.get_by_role("heading", name=CHILD)).to_be_visible()
    live = "Live: new posts appear here as they are made."
    for page in (lead, gp):
        expect(page.locator("[data-tac-connection]")).to_have_text(live)
    mark_page(gp)

    post_update(lead, UPDATE)
    update = gp.locator(".tac-post", has_text=UPDATE)
    expect(update).to_be_visible()
    update.get_by_role("button", name=re.compile(rf"^Reply to update #\d+ from {LEAD['name']}$")).click()
    expect(gp.locator("[data-tac-replying]")).to_contain_text("Replying to update #")
    post_update(gp, REPLY)
    reply = lead.locator(".tac-post", has_text=REPLY)
    expect(reply).to_be_visible()
    expect(reply.locator("[data-parent]")).to_contain_text(f"from {LEAD['name']}")
    # The lead's page has not reloaded since the invitation (the acceptance arrived live too), nor the GP's
    # since opening the workspace.
    assert still_marked(lead) and still_marked(gp), "a page reloaded: what it shows did not arrive live"

    cookies = {cookie["name"]: cookie for cookie in lead.context.cookies()}
    assert "sessionid" not in cookies
    session = cookies["__Host-sessionid"]
    assert session["secure"] and session["httpOnly"] and session["path"] == "/" and session["domain"] == "127.0.0.1"


def shape(deploy: Deployment) -> None:
    """What the journey went through: nginx's redirect, TLS headers, both workers, the task worker, and the
    address the audit trail records."""
    redirect = httpx.get(f"http://127.0.0.1:{deploy.http_port}/accounts/sign-in/?next=/", timeout=10)
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "https://127.0.0.1/accounts/sign-in/?next=/"

    page = httpx.get(f"{deploy.origin}/accounts/sign-in/", verify=False, timeout=10)
    assert page.status_code == 200
    assert page.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains; preload"
    # Static files come from nginx's alias, not from daphne, including the custodian pin written at install.
    pin = httpx.get(f"{deploy.origin}/static/tac/pins/custodian.json", verify=False, timeout=10)
    assert pin.status_code == 200 and pin.json()
    module = httpx.get(f"{deploy.origin}/static/vendor/libsodium/libsodium-wrappers.mjs", verify=False, timeout=10)
    assert module.headers["content-type"] == "text/javascript"
    # Only a content-hashed name is cached for good; the pin and the modules (imported by their plain
    # names) are revalidated, so an upgrade or a new custodian key reaches every browser at once.
    for plain in (pin, module):
        assert plain.headers["cache-control"] == "no-cache", plain.url
    hashed = re.search(r'src="(/static/tac/[^"]+\.[0-9a-f]{12}\.js)"', page.text)
    assert hashed, "the sign-in page names no content-hashed script"
    script = httpx.get(f"{deploy.origin}{hashed.group(1)}", verify=False, timeout=10)
    assert script.status_code == 200 and "immutable" in script.headers["cache-control"]

    # The sockets closed with their pages, so nginx has logged them by now or is about to.
    deploy.wait_until("nginx to log the closed websockets",
                      lambda: sum(1 for _, status, _, path in deploy.upstreams() if path == "/ws/" and status == "101") >= 2)
    served = Counter(upstream for upstream, *_ in deploy.upstreams() if upstream != "-")
    for port in deploy.daphne_ports.values():
        assert served[f"127.0.0.1:{port}"] > 0, f"daphne on {port} served nothing through nginx: {served}"
    assert not [line for line in deploy.upstreams() if line[2] == "GET" and line[3].startswith("/static/")
                and line[0] != "-"], "a static file went to daphne"
    # The deployed access log keeps paths, never query strings (a directory search carries an email address).
    access_log = (deploy.dir / "logs" / "tac.access.log").read_text()
    assert "GET /accounts/sign-in/" in access_log and "?" not in access_log

    # The invitation's email went out through the task worker (a job in PostgreSQL), to the GP, linking to
    # the site's address from the environment.
    def emails() -> list[str]:
        return [path.read_text() for path in (deploy.dir / "mail").iterdir()]

    deploy.wait_until("the invitation email", lambda: any(f"To: {GP['email']}" in email for email in emails()))
    (email,) = emails()
    assert f"{deploy.origin}/notifications" in email, email

    sign_ins = deploy.query("SELECT actor_label, host(ip) FROM audit_auditevent WHERE kind = 'auth.sign_in' "
                            "ORDER BY id")
    assert [ip for _, ip in sign_ins] == ["127.0.0.1", "127.0.0.1"], sign_ins
    assert not deploy.query("SELECT id FROM audit_auditevent WHERE host(ip) = %s", FORGED_ADDRESS)
