"""Settings shared by every environment. Everything secret or site-specific comes from the environment.

Environment variables (see README.md, "Configuration"):
  SECRET_KEY            required; no default anywhere in code.
  DEBUG                 default False.
  ALLOWED_HOSTS         comma-separated.
  CSRF_TRUSTED_ORIGINS  comma-separated origins (https://tac.example.org) when behind a proxy.
  DATABASE_URL          default sqlite:///db.sqlite3 (quick start only); postgres://... as deployed.
  REDIS_URL             unset: in-memory channel layer (one process only); redis://... as deployed.
  CHANNEL_LAYER         "pubsub" (default) or "core": which channels-redis layer to use.
  EMAIL_URL / EMAIL_*   default: console backend.
  DEFAULT_FROM_EMAIL    sender of invitations and password resets.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "channels",
    "audit",
    "accounts",
    "messaging",
    "notifications",
    "oversight",
    "frontend",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Cache-Control: no-store on what a signed-in person sees and on every accounts or API answer, and a
    # Permissions-Policy on every page. After WhiteNoise, so static files are left alone; before the rest,
    # so it sees every answer they give.
    "teamaroundchild.middleware.PrivateResponseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.SessionGenerationMiddleware",
    "accounts.middleware.Require2FAMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # AxesMiddleware last, as django-axes asks: it turns a lockout into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "teamaroundchild.urls"
ASGI_APPLICATION = "teamaroundchild.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "frontend.context_processors.kdf",
                "notifications.context_processors.unread",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
# A connection that answered within this many seconds is not health-checked again before reuse
# (teamaroundchild/postgresql/base.py says why).
TAC_DB_HEALTH_CHECK_SKIP_SECONDS = env.float("TAC_DB_HEALTH_CHECK_SKIP_SECONDS", default=1.0)
TAC_JOB_QUEUE = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if TAC_JOB_QUEUE:
    DATABASES["default"]["ENGINE"] = "teamaroundchild.postgresql"
    # Parameters sent apart from the SQL, and a statement run 5 times on a connection prepared there, so
    # PostgreSQL plans it once: planning was most of a post's database time (0.35-0.5 ms of the lock
    # query's 0.5 ms; BENCHMARKS.md). Needs direct connections or a pooler in session mode.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=5 if env.bool("DB_PREPARED_STATEMENTS", default=True) else None)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Background work (teamaroundchild/jobs.py): procrastinate, a task queue in PostgreSQL. Jobs are deferred in
# the transaction of the change that causes them, periodic jobs run the clocks, and any number of workers
# (`manage.py tac_worker`) share the database. Its schema is PostgreSQL's own (PL/pgSQL), so on the quick
# start's SQLite the app is left out and the same job code runs in-process instead.
if TAC_JOB_QUEUE:
    INSTALLED_APPS.insert(INSTALLED_APPS.index("audit"), "procrastinate.contrib.django")
PROCRASTINATE_AUTODISCOVER_MODULE_NAME = "tasks"

REDIS_URL = env.str("REDIS_URL", default="")
CHANNEL_LAYER = env.str("CHANNEL_LAYER", default="pubsub")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": {
                "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "core": "channels_redis.core.RedisChannelLayer",
            }[CHANNEL_LAYER],
            # The core layer blocks up to 5 s in BZPOPMIN waiting for a message, and redis-py 8 gives up
            # reading after 5 s by default: an idle process then failed with "Timeout reading from
            # Redis" and closed its sockets (BENCHMARKS.md). Reads get longer than the block. It also
            # takes a pooled connection per call, and redis-py 8's pool refuses the 101st at once: a
            # thousand sockets leaving together crashed (tests/test_channel_layers.py).
            "CONFIG": {"hosts": [REDIS_URL] if CHANNEL_LAYER == "pubsub"
                       else [{"address": REDIS_URL, "socket_timeout": 30,
                              "max_connections": env.int("REDIS_MAX_CONNECTIONS", default=4000)}],
                       # Pub/sub channels are not scoped by the Redis database number: two deployments
                       # (or a quick start and a test run) on one Redis would hear each other's group
                       # events unless each has its own prefix.
                       "prefix": env.str("CHANNEL_LAYER_PREFIX", default="tac")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_USER_MODEL = "accounts.Professional"
AUTHENTICATION_BACKENDS = [
    # django-axes first, so a locked-out account or address is refused before its password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# The browser never sends the password: it sends an auth key derived from it with Argon2id (see
# accounts/README.md). Django stores a salted hash of that key as usual, so a stolen session table or
# password column gives neither the password nor the key-wrapping key. Strength rules for the password
# itself run in the browser, the only place that sees it.
AUTH_PASSWORD_VALIDATORS: list[dict] = []
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "frontend:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Idle expiry: a session not used for 30 minutes ends (shared clinical PCs are the norm).
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=30 * 60)
# Django's database sessions, loaded by a hand-written statement (accounts/sessions.py). Open websockets
# are checked against the stored sessions, so the engine must keep them in the database.
SESSION_ENGINE = "accounts.sessions"
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "messaging.views.csrf_failure"

# How long a 2FA check counts as recent for sensitive operations (password change, invitations,
# offboarding, new backup codes).
TAC_REVERIFY_SECONDS = env.int("TAC_REVERIFY_SECONDS", default=10 * 60)
# A websocket re-checks its session (active account, generation, auth hash, 2FA device) before a frame
# once this long has passed since the last check. Every way a session ends also sends session.revoked,
# which closes its sockets at once; this is the backstop should that event be lost.
TAC_SOCKET_RECHECK_SECONDS = env.float("TAC_SOCKET_RECHECK_SECONDS", default=5.0)
# The largest websocket frame read (UTF-8 bytes): the largest post frame is about 350 KB. Below daphne's
# own 1 MiB, so a larger frame gets an error naming this limit before the close, not a bare close.
TAC_SOCKET_MAX_FRAME_BYTES = env.int("TAC_SOCKET_MAX_FRAME_BYTES", default=512 * 1024)
TAC_INVITATION_TTL = timedelta(hours=env.int("TAC_INVITATION_TTL_HOURS", default=72))
# Argon2id cost for new passwords: about 64 MiB and 3 passes, as PRODUCT.md asks. Stored per account,
# so it can be raised later without locking anyone out.
TAC_KDF_OPSLIMIT = env.int("TAC_KDF_OPSLIMIT", default=3)
TAC_KDF_MEMLIMIT = env.int("TAC_KDF_MEMLIMIT", default=64 * 1024 * 1024)

OTP_TOTP_ISSUER = "Team Around the Child"
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1

# Brute force: five failures lock the account (from every address) for 15 minutes, answered with a
# clear page (accounts/views.py), not a bare 403. Never the address: a council's or a hospital's staff
# share one NAT address, and one person's wrong passwords must not lock out the rest. An address that
# fails at many accounts (spraying one password across them) is slowed down instead: once it has failed
# at TAC_SIGN_IN_ADDRESS_ACCOUNTS different accounts within the cool-off, it gets one password checked
# per TAC_SIGN_IN_ADDRESS_DELAY_SECONDS, so a colleague is at worst delayed (accounts/throttle.py).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username"]
# django-axes warns (axes.W006) whenever the address is not a lockout parameter, saying rotating browsers
# or cookies would get round the limit. Not with "username" alone: an account's failures are summed over
# every address and browser (tests/accounts/test_lockout.py), and the address has its own throttle.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_USERNAME_FORM_FIELD = "email"
# django-axes keeps the POST data of every failed attempt, a locked account's correct one included: the
# auth key is what the server takes as the password, so it is masked like one.
AXES_PASSWORD_FORM_FIELD = "auth_key"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.lockout_response"
# The address the audit trail records, which teamaroundchild/proxy.py has already taken from nginx's
# header when (and only when) nginx is the peer. Never a header read here.
AXES_CLIENT_IP_CALLABLE = "audit.services.client_ip"
AXES_VERBOSE = False
TAC_SIGN_IN_ADDRESS_ACCOUNTS = env.int("TAC_SIGN_IN_ADDRESS_ACCOUNTS", default=10)
TAC_SIGN_IN_ADDRESS_DELAY_SECONDS = env.int("TAC_SIGN_IN_ADDRESS_DELAY_SECONDS", default=30)
# Peers whose X-Forwarded-For names the client (addresses or networks): the nginx in front of daphne.
TAC_TRUSTED_PROXIES = env.list("TAC_TRUSTED_PROXIES", default=["127.0.0.1", "::1"])

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = None  # production.py sets it for collectstatic; WhiteNoise serves from finders elsewhere
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# WhiteNoise offers every static file to every origin (Access-Control-Allow-Origin: *) unless told not to;
# nothing here is meant for other sites' scripts.
WHITENOISE_ALLOW_ALL_ORIGINS = False
WHITENOISE_MIMETYPES = {".mjs": "text/javascript"}
# Pins written at deployment and served as static files beside the scripts, never as API answers: the
# custodian key clients seal every epoch to (messaging/custodian.py). `manage.py custodian_key_create`
# writes here; run collectstatic after it in production.
TAC_PIN_DIR = Path(env.str("TAC_PIN_DIR", default=str(BASE_DIR / "var" / "pins")))
STATICFILES_DIRS = [("tac/pins", TAC_PIN_DIR)]

# Response clocks (oversight/clocks.py), from published MASH practice; councils vary, so each is a setting.
# Red runs around the clock in hours; amber and green in working days.
TAC_CONCERN_CLOCK_HOURS = {"red": env.int("TAC_CLOCK_RED_HOURS", default=4)}
TAC_CONCERN_CLOCK_WORKING_DAYS = {"amber": env.int("TAC_CLOCK_AMBER_WORKING_DAYS", default=1),
                                  "green": env.int("TAC_CLOCK_GREEN_WORKING_DAYS", default=3)}
# Working days skip weekends and these bank holidays (the `holidays` package's country and subdivision:
# GB/ENG is England and Wales; GB/SCT Scotland, GB/NIR Northern Ireland).
TAC_HOLIDAYS_COUNTRY = env.str("TAC_HOLIDAYS_COUNTRY", default="GB")
TAC_HOLIDAYS_SUBDIV = env.str("TAC_HOLIDAYS_SUBDIV", default="ENG")
# The hour (site time) at which an action's owner is reminded on the working day before it is due, and
# at which daily digests go out.
TAC_REMINDER_HOUR = env.int("TAC_REMINDER_HOUR", default=8)
TAC_DIGEST_HOUR = env.int("TAC_DIGEST_HOUR", default=7)
# The address emails link to (they carry nothing else).
TAC_SITE_URL = env.str("TAC_SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Team Around the Child <no-reply@localhost>")

# No inline script or style anywhere. 'wasm-unsafe-eval' is what libsodium.js needs to compile its
# WebAssembly, and nothing looser.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, "'wasm-unsafe-eval'"],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}
X_FRAME_OPTIONS = "DENY"
# No page needs a camera, microphone, location, payment or device API; a script that got in could not
# ask for one either. Only features Chromium knows, so the header logs no console warnings.
PERMISSIONS_POLICY = [
    "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "geolocation", "gyroscope",
    "hid", "idle-detection", "magnetometer", "microphone", "midi", "payment", "picture-in-picture",
    "publickey-credentials-get", "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}, "daphne": {"level": "WARNING"}, "procrastinate": {"level": "WARNING"}},
}
