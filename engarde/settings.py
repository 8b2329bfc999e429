"""En Garde settings: one module, driven by the environment (django-environ).

Every variable read here is documented in README.md ("Configuration"). With no environment at
all the project runs on its embedded default: SQLite in ``var/``, Celery tasks in-process after
commit, e-mail to the console. With ``DEBUG`` off, a missing ``SECRET_KEY`` or
``FIELD_ENCRYPTION_KEYS`` stops start-up with a clear message instead of running on a guess.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from engarde.devkeys import development_keys
from engarde.networks import parse_networks

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("ENGARDE_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not SECRET_KEY or not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        missing = [n for n, v in (("SECRET_KEY", SECRET_KEY), ("FIELD_ENCRYPTION_KEYS", FIELD_ENCRYPTION_KEYS)) if not v]
        raise ImproperlyConfigured(
            f"{' and '.join(missing)} must be set when DEBUG is off "
            "(see README.md, Configuration). For local development set DEBUG=true."
        )
    # Embedded default: generated once and kept in var/dev-keys.json (git-ignored).
    dev_keys = development_keys(VAR_DIR / "dev-keys.json")
    SECRET_KEY = SECRET_KEY or dev_keys["SECRET_KEY"]
    FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or [dev_keys["FIELD_ENCRYPTION_KEY"]]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Every webhook URL shown to a tenant or printed by a command is built on this base.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "engarde.admin_site.EnGardeAdminConfig",  # django.contrib.admin with the operator-context site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI as static files (/api/docs/)
    "axes",
    "tenants",
    "integrations",
    "webhooks",
    "contacts",
    "reports",
]

MIDDLEWARE = [
    # /healthz, /readyz, /metrics: answered first, before the HTTPS redirect and the host check
    # (load balancers probe over plain http by address); everything else passes through.
    "engarde.probes.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A NUL in the URL or a header is a 400 here, before anything looks it up (a DataError later).
    "engarde.middleware.RefuseUnstorableText",
    # A webhook delivery to a connection this process has seen is answered here (the fast path),
    # past the probes, the HTTPS redirect and the NUL refusal, before the rest (webhooks.views).
    "webhooks.views.FastPathMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.TenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a lockout found during authentication into the "account locked" page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "engarde.urls"
WSGI_APPLICATION = "engarde.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------------------
# DATABASE_URL is what the web, the workers and the commands connect as: in production a role
# that is not superuser, not BYPASSRLS and not the tables' owner (``manage.py setup_app_role``).
# MIGRATE_DATABASE_URL, when set, is the tables' owner: ``migrate`` and ``setup_app_role`` use it
# (the "owner" alias). In tests the runtime alias mirrors the owner's test database, so the
# owner creates and migrates it and every test then runs as the restricted role.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if env.str("MIGRATE_DATABASE_URL", default=""):
    DATABASES["owner"] = env.db("MIGRATE_DATABASE_URL")
    DATABASES["default"]["TEST"] = {"MIRROR": "owner"}
# OPERATOR_DATABASE_URL: the operator role (``setup_app_role --operator``, BYPASSRLS). Only code
# inside ``operator_context`` reaches it (the admin, operator commands, beat fan-out), through the
# router below; the runtime role cannot see across tenants whatever SQL it runs. Unset: operator
# contexts use the default alias (SQLite, or a single PostgreSQL role, where RLS then shows them
# one tenant at most).
if env.str("OPERATOR_DATABASE_URL", default=""):
    DATABASES["operator"] = env.db("OPERATOR_DATABASE_URL")
    DATABASES["operator"]["TEST"] = {"MIRROR": "owner" if "owner" in DATABASES else "default"}
OPERATOR_DB_ALIAS = "operator" if "operator" in DATABASES else "default"
DATABASE_ROUTERS = ["tenants.routing.OperatorRouter"]
for _db in DATABASES.values():
    # Kept connections: a new PostgreSQL connection per request costs more than the rest of a
    # webhook delivery (make bench: 108 against 296 deliveries/s). Safe with the tenant set only
    # transaction-locally; 0 closes each connection after its request.
    _db.setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    _db.setdefault("CONN_HEALTH_CHECKS", True)
    # Behind pgbouncer in transaction pooling mode a server-side cursor (``.iterator()`` outside a
    # transaction) may land on another server connection: Django's documented switch turns them off.
    _db.setdefault("DISABLE_SERVER_SIDE_CURSORS", env.bool("DB_DISABLE_SERVER_SIDE_CURSORS", default=False))
    if _db["ENGINE"].startswith("django.db.backends.postgresql") and env.bool("DB_SERVER_SIDE_BINDING", default=True):
        # Parameters beside the statement (the extended protocol's unnamed statements: fine behind
        # pgbouncer in transaction mode), not quoted into its text by Python: a drain batch's bulk
        # inserts carry hundreds of values (make bench, burst: about a sixth less CPU per event).
        _db.setdefault("OPTIONS", {}).setdefault("server_side_binding", True)
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        # Webhook ingest and the in-process worker write from several threads.
        _db.setdefault("OPTIONS", {}).setdefault("timeout", 20)
        _db["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Times to the second with their zone wherever no page picks a format (the admin): engarde/formats/.
FORMAT_MODULE_PATH = ["engarde.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))

# django-axes first: a locked-out account is refused before its password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "tenants.backends.EmailOrUsernameBackend"]

# How long an invitation link from a members page works (resending makes a new link).
INVITATION_VALID_DAYS = env.int("INVITATION_VALID_DAYS", default=7)

# --- Sign-in throttling (django-axes; tenants/lockout.py) ------------------------------------
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
# An account after too many failures from anywhere, and an address after too many failures on any
# accounts (password spraying). The address is the one the webhook receiver trusts
# (WEBHOOK_CLIENT_IP_HEADER behind a proxy), so a proxy's own address never locks everyone out.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "webhooks.views.client_ip"
AXES_USERNAME_CALLABLE = "tenants.lockout.login_key"
AXES_LOCKOUT_CALLABLE = "tenants.lockout.locked_out"
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- Security headers when served over HTTPS -------------------------------------------------
# Behind a TLS-terminating proxy (BEHIND_HTTPS_PROXY=true) with DEBUG off, plain http is redirected
# to https and browsers are told to stay on https (HSTS) unless these say otherwise.
BEHIND_HTTPS_PROXY = env.bool("BEHIND_HTTPS_PROXY", default=False)
_proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=["HTTP_X_FORWARDED_PROTO", "https"])
if len(_proxy_header) != 2:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER is a META key and a value, e.g. HTTP_X_FORWARDED_PROTO,https")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) if BEHIND_HTTPS_PROXY else None
_https = BEHIND_HTTPS_PROXY and not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_https)
# Paths (regular expressions, no leading slash) answered over plain http too, e.g. a health check.
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[])
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if _https else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)

# --- E-mail (Django 6.1 mailers) -------------------------------------------------------------
# Console by default. Production: EMAIL_BACKEND=anymail.backends.brevo.EmailBackend with
# BREVO_API_KEY (Anymail), or an SMTP server as EMAIL_URL=smtp+tls://user:password@host:587.
_email = env.email_url("EMAIL_URL", default="consolemail://")
_email_backend = env.str("EMAIL_BACKEND", default=_email["EMAIL_BACKEND"])
_email_options = {}
if _email_backend == "django.core.mail.backends.smtp.EmailBackend":
    _email_options = {
        "host": _email.get("EMAIL_HOST", "localhost"),
        "port": _email.get("EMAIL_PORT", 25),
        "username": _email.get("EMAIL_HOST_USER", ""),
        "password": _email.get("EMAIL_HOST_PASSWORD", ""),
        "use_tls": bool(_email.get("EMAIL_USE_TLS", False)),
        "use_ssl": bool(_email.get("EMAIL_USE_SSL", False)),
    }
MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="En Garde <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Operators told when a tenant's integration starts failing, has dead rows, or recovers
# (integrations/notifications.py). Empty: nobody is mailed.
ADMIN_NOTIFICATION_EMAILS = env.list("ADMIN_NOTIFICATION_EMAILS", default=[])
ANYMAIL = {"BREVO_API_KEY": env.str("BREVO_API_KEY", default="")}

# --- Celery ----------------------------------------------------------------------------------
# Unset broker: tasks run in-process (eagerly), enqueued after the transaction commits. That is
# the embedded default with DEBUG on; with DEBUG off it must be chosen (CELERY_TASK_ALWAYS_EAGER=true),
# never fallen into because a variable went missing: tasks would run inside requests.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=DEBUG and not CELERY_BROKER_URL)
if not CELERY_BROKER_URL and not CELERY_TASK_ALWAYS_EAGER:
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL must be set when DEBUG is off; to run tasks in-process on purpose, "
        "set CELERY_TASK_ALWAYS_EAGER=true (see README.md, Configuration)."
    )
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every database connection before and after each task unless this
# is set, so a worker reconnected about once per event (make bench: 24 round trips and a new
# PostgreSQL backend for every other event). With it the fixup closes them only every 1,000
# tasks; engarde/celery.py then treats each task as Django treats a request:
# ``close_if_unusable_or_obsolete`` before and after it, which honours DB_CONN_MAX_AGE and the
# health check, so a connection is kept across tasks as it is across requests.
CELERY_DB_REUSE_MAX = 1000

# A broker that is down must not hold a webhook answer: fail the publish fast, the row is stored
# and the sweeper publishes it later.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# Redis: a message a worker took but never acknowledged (the worker died mid-task, acks_late) goes
# back to the queue after ``visibility_timeout`` seconds. Keep it above the longest task and the
# longest retry countdown; the reliability tests lower it to see a redelivery within seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2, "socket_timeout": 5,
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=7200),
}

# --- Cache (webhook rate limits, API tokens of platforms) -------------------------------------
# Shared across processes in production: CACHE_URL=redis://host:6379/1.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://engarde")}

# --- Webhooks (platform-wide settings; per-tenant secrets live on TenantIntegration) ---------
# GoHighLevel signs every delivery with its own published key, shared by all its customers:
# Ed25519 (x-ghl-signature) and, until GoHighLevel retires it, RSA (x-wh-signature).
GHL_WEBHOOK_PUBLIC_KEY = env.str("GHL_WEBHOOK_PUBLIC_KEY", default="")
GHL_WEBHOOK_RSA_PUBLIC_KEY = env.str("GHL_WEBHOOK_RSA_PUBLIC_KEY", default="")
# Platform-wide fallback secrets (<SOURCE>_WEBHOOK_SECRET), used only for a tenant that has no
# secret of its own. Off unless set. Which sources take one is their provider's to say
# (``Provider.fallback_secret_env``), so there is no list of sources here: every variable of that
# form is read, and ``manage.py check`` warns about one that names no such provider (a typo).
WEBHOOK_FALLBACK_SECRETS = {
    name.removesuffix("_WEBHOOK_SECRET").lower(): value
    for name, value in os.environ.items()
    if name.endswith("_WEBHOOK_SECRET") and name != "_WEBHOOK_SECRET" and value
}
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)
# The receiver's fast path (webhooks/fastpath.py): a delivery to a connection this process has seen
# is stored with one statement; anything unusual goes the view's way. PostgreSQL only.
WEBHOOK_FAST_PATH = env.bool("WEBHOOK_FAST_PATH", default=True)
# 401 tells a sender (and an attacker) the truth; 200 is the seed's "stop retrying" behaviour.
WEBHOOK_REJECTED_STATUS = env.int("WEBHOOK_REJECTED_STATUS", default=401)
# Deliveries per tenant per window; 0 turns the limit off.
WEBHOOK_RATE_LIMIT = env.int("WEBHOOK_RATE_LIMIT", default=1200)
WEBHOOK_RATE_WINDOW_SECONDS = env.int("WEBHOOK_RATE_WINDOW_SECONDS", default=60)
# Rejected deliveries stored (capped) per tenant per window; the rest are only counted, on the
# newest stored one. Verification comes first, so this never changes a genuine delivery's answer.
WEBHOOK_REJECTED_SAMPLE = env.int("WEBHOOK_REJECTED_SAMPLE", default=20)
# Behind a proxy: the META key of the header it appends the client's address to, e.g.
# HTTP_X_FORWARDED_FOR (its last entry is used). Unset: REMOTE_ADDR.
WEBHOOK_CLIENT_IP_HEADER = env.str("WEBHOOK_CLIENT_IP_HEADER", default="")
WEBHOOK_MAX_RETRIES = env.int("WEBHOOK_MAX_RETRIES", default=8)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
# The sweeper re-publishes rows still "received" after this long (lost publish, broker outage).
WEBHOOK_SWEEP_AFTER_SECONDS = env.int("WEBHOOK_SWEEP_AFTER_SECONDS", default=120)
# How stored rows reach a worker: "tasks" (one process_webhook message per row) or "rows" (the
# stored row is the queue: a deduplicated wake-up, workers claim batches; webhooks/drain.py).
WEBHOOK_QUEUE = env.str("WEBHOOK_QUEUE", default="rows")
if WEBHOOK_QUEUE not in ("tasks", "rows"):
    raise ImproperlyConfigured("WEBHOOK_QUEUE is tasks or rows (see README.md, Configuration)")
WEBHOOK_DRAIN_BATCH = env.int("WEBHOOK_DRAIN_BATCH", default=100)
WEBHOOK_DRAIN_PER_TENANT = env.int("WEBHOOK_DRAIN_PER_TENANT", default=20)
WEBHOOK_CLAIM_LEASE_SECONDS = env.int("WEBHOOK_CLAIM_LEASE_SECONDS", default=300)
WEBHOOK_WAKE_SECONDS = env.int("WEBHOOK_WAKE_SECONDS", default=1)
# Each process asks the shared cache about a wake-up at most once per this many ms; a delivery
# inside the window is woken at its end (webhooks.drain.WakeCoalescer). 0: on every delivery.
WEBHOOK_WAKE_COALESCE_MS = env.int("WEBHOOK_WAKE_COALESCE_MS", default=50)
# A drain woken by a delivery waits this long before its claim, so the rows of that moment join
# it (webhooks.tasks.drain): fewer, larger drains at a steady rate, for this much more lag. 0: none.
WEBHOOK_DRAIN_LINGER_MS = env.int("WEBHOOK_DRAIN_LINGER_MS", default=50)
# At most one new-contact e-mail per tenant per this many seconds; contacts that arrive meanwhile
# are told in one digest when the window ends (contacts.tasks). 0: every batch at once.
NEW_CONTACT_NOTICE_SECONDS = env.int("NEW_CONTACT_NOTICE_SECONDS", default=300)
# Retention (webhooks.prune_webhooks, daily): bodies and headers of processed rows, and rejected
# rows whole, are dropped after this many days; 0 keeps them.
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=90)
WEBHOOK_REJECTED_RETENTION_DAYS = env.int("WEBHOOK_REJECTED_RETENTION_DAYS", default=7)

# --- Platform API bases (configurable so tests and proxies can point elsewhere) ---------------
BREVO_API_BASE = env.str("BREVO_API_BASE", default="https://api.brevo.com/v3")
EVENTBRITE_API_BASE = env.str("EVENTBRITE_API_BASE", default="https://www.eventbriteapi.com/v3")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
ZOOM_OAUTH_URL = env.str("ZOOM_OAUTH_URL", default="https://zoom.us/oauth/token")
ZOOM_API_BASE = env.str("ZOOM_API_BASE", default="https://api.zoom.us/v2")
GHL_API_BASE = env.str("GHL_API_BASE", default="https://services.leadconnectorhq.com")
GHL_API_VERSION = env.str("GHL_API_VERSION", default="2021-07-28")
MANYCHAT_API_BASE = env.str("MANYCHAT_API_BASE", default="https://api.manychat.com")
META_GRAPH_BASE = env.str("META_GRAPH_BASE", default="https://graph.facebook.com")
META_GRAPH_VERSION = env.str("META_GRAPH_VERSION", default="v25.0")

# Where operators may point a platform URL (a self-hosted Easy!Appointments on the company
# network): comma-separated CIDRs, none by default. Only URLs an operator set (the admin,
# connect_integration) may reach them, and only there is plain http allowed; a URL a tenant typed
# stays public https (integrations/http.py). A bad CIDR stops start-up.
OUTBOUND_PRIVATE_NETWORKS = parse_networks(env.list("OUTBOUND_PRIVATE_NETWORKS", default=[]))

# --- Health and metrics (engarde/probes.py; README, "Health and metrics") ---------------------
# /metrics answers only to METRICS_TOKEN (Authorization: Bearer) and/or clients in
# METRICS_ALLOWED_NETWORKS (both when both are set); with neither it is a 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = parse_networks(env.list("METRICS_ALLOWED_NETWORKS", default=[]), "METRICS_ALLOWED_NETWORKS")
# A tenant label (the tenant's id) on every series: one series per tenant and platform, so off by default.
METRICS_PER_TENANT = env.bool("METRICS_PER_TENANT", default=False)
# /readyz: how long the database and the broker each get to answer.
READYZ_TIMEOUT_SECONDS = env.float("READYZ_TIMEOUT_SECONDS", default=2.0)

# --- REST framework --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.IsTenantMember"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=50),
    "DEFAULT_SCHEMA_CLASS": "engarde.openapi.TenantAwareSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "En Garde API",
    "DESCRIPTION": (
        "Your tenant's data in En Garde: the contacts, payments and sign-ups your platforms' webhooks "
        "produced, the deliveries themselves, and your connected platforms. Read-only, except replaying "
        "a delivery.\n\n"
        "Authenticate with `Authorization: Bearer <token>` (an API token of your tenant). Every answer is "
        "about one tenant: yours, or the one you name with `?tenant=` (or `X-Tenant`) when you belong to "
        "several. Lists are paginated as `{count, next, previous, results}`; `?page=` picks a page."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "engarde.openapi.add_webhook_receiver",
    ],
    # Swagger UI (/api/docs/) from drf-spectacular-sidecar's files, served like our own static
    # files: no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Logging ---------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Every line we write passes RedactTokens: no ?token= value reaches a log (engarde/logfilters.py).
    "filters": {"redact_tokens": {"()": "engarde.logfilters.RedactTokens"},
                "one_line": {"()": "engarde.logfilters.OneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_tokens"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # axes.apps announces itself at every start-up (and would break one-line command errors);
        # its failures and lockouts (the "axes" logger) stay.
        "axes.apps": {"level": "WARNING"},
        # runserver's request lines: through the same handler, not Django's own unfiltered one.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Their retry warnings and debug lines quote the URL, query string (Meta's access_token)
        # included: redacted at the logger, so every handler (and a test's capture) gets it clean.
        "urllib3.connectionpool": {"filters": ["redact_tokens"]},
        "urllib3.util.retry": {"filters": ["redact_tokens"]},
        # A foreign Host header (scanners, every day) is a 400 and one WARNING line, not an ERROR
        # with a traceback that floods the log.
        "django.security.DisallowedHost": {"filters": ["one_line"]},
    },
}

# Messages live in the server-side session, not a cookie: the one message that shows a newly
# generated webhook token must not travel in a (signed, not encrypted) cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# --- Pull syncs (integrations/sync.py) and Meta Ads ---------------------------------------------
# The beat looks for due syncs every SYNC_BEAT_SECONDS (engarde/celery.py reads it); each
# provider has its own interval between two syncs of one integration.
# A claim older than this is a crashed run's: the next beat takes the integration over. Every
# page a sync writes refreshes its claim, so only a run silent this long is taken over.
SYNC_STALE_AFTER_SECONDS = env.int("SYNC_STALE_AFTER_SECONDS", default=1800)
SYNC_MAX_RETRIES = env.int("SYNC_MAX_RETRIES", default=5)
SYNC_RETRY_BASE_SECONDS = env.float("SYNC_RETRY_BASE_SECONDS", default=60.0)
SYNC_RETRY_MAX_SECONDS = env.float("SYNC_RETRY_MAX_SECONDS", default=3600.0)
META_SYNC_INTERVAL_HOURS = env.float("META_SYNC_INTERVAL_HOURS", default=6.0)
# The Stripe backfill (integrations/providers/stripe/backfill.py): how often it lists each tenant's
# events, how far before the last event seen it starts again (Stripe may list an event a moment
# after its time), and how far back a first run goes (Stripe keeps 30 days of events).
STRIPE_BACKFILL_INTERVAL_HOURS = env.float("STRIPE_BACKFILL_INTERVAL_HOURS", default=24.0)
STRIPE_BACKFILL_OVERLAP_SECONDS = env.int("STRIPE_BACKFILL_OVERLAP_SECONDS", default=600)
STRIPE_BACKFILL_MAX_DAYS = env.int("STRIPE_BACKFILL_MAX_DAYS", default=30)
META_BACKFILL_DAYS = env.int("META_BACKFILL_DAYS", default=90)
META_LOOKBACK_DAYS = env.int("META_LOOKBACK_DAYS", default=28)
# Days of insights per request (Meta times out on long ad-level ranges); a finished chunk is the
# point a stopped sync resumes from.
META_INSIGHTS_CHUNK_DAYS = env.int("META_INSIGHTS_CHUNK_DAYS", default=7)
META_PAGE_LIMIT = env.int("META_PAGE_LIMIT", default=500)
# Usage headers (percent of Meta's budget): above SLOW, pause between pages; above STOP, stop and
# come back later from the cursor.
META_USAGE_SLOW_PERCENT = env.float("META_USAGE_SLOW_PERCENT", default=75.0)
META_USAGE_STOP_PERCENT = env.float("META_USAGE_STOP_PERCENT", default=95.0)
META_USAGE_PAUSE_SECONDS = env.float("META_USAGE_PAUSE_SECONDS", default=5.0)

# Zoom's attendee sync (integrations/providers/zoom/sync.py): every ZOOM_SYNC_INTERVAL_MINUTES,
# upcoming meetings and webinars and those that started in the last ZOOM_LOOKBACK_DAYS; at most
# ZOOM_MAX_PAGES pages (of 300) per list, so one runaway list cannot hold a worker.
ZOOM_SYNC_INTERVAL_MINUTES = env.float("ZOOM_SYNC_INTERVAL_MINUTES", default=30.0)
ZOOM_LOOKBACK_DAYS = env.int("ZOOM_LOOKBACK_DAYS", default=30)
ZOOM_MAX_PAGES = env.int("ZOOM_MAX_PAGES", default=100)

# Eventbrite's attendee sync (integrations/providers/eventbrite/sync.py): every
# EVENTBRITE_SYNC_INTERVAL_MINUTES, the private token's organizations, their events in the
# EVENTBRITE_EVENT_STATUS states (Eventbrite's own comma-separated filter) that are live or ended in the
# last EVENTBRITE_ENDED_DAYS, and their attendees changed since the last run (the first run:
# EVENTBRITE_BACKFILL_DAYS back); at most EVENTBRITE_MAX_PAGES pages per list.
EVENTBRITE_SYNC_INTERVAL_MINUTES = env.float("EVENTBRITE_SYNC_INTERVAL_MINUTES", default=60.0)
EVENTBRITE_ENDED_DAYS = env.int("EVENTBRITE_ENDED_DAYS", default=30)
EVENTBRITE_BACKFILL_DAYS = env.int("EVENTBRITE_BACKFILL_DAYS", default=365)
EVENTBRITE_EVENT_STATUS = env.str("EVENTBRITE_EVENT_STATUS", default="live,started,ended")
EVENTBRITE_MAX_PAGES = env.int("EVENTBRITE_MAX_PAGES", default=100)

# Easy!Appointments' API (integrations/providers/easyappointments/client.py, reports/bookings.py):
# at most EASYAPPOINTMENTS_MAX_PAGES pages (of 100 rows) per list in one request.
EASYAPPOINTMENTS_MAX_PAGES = env.int("EASYAPPOINTMENTS_MAX_PAGES", default=50)
# The bookings' sync-to-email-list (reports/bookings.py): Brevo upserts this many a second, and a
# 429 is waited on for at most BREVO_MAX_WAIT_SECONDS before the contact is tried again.
BREVO_BATCH_SIZE = env.int("BREVO_BATCH_SIZE", default=10)
BREVO_MAX_WAIT_SECONDS = env.float("BREVO_MAX_WAIT_SECONDS", default=10.0)

# --- Weekly reports (reports/) ---------------------------------------------------------------------
# A report claimed ("sending") longer ago than this belongs to a crashed worker and is taken again.
REPORT_STALE_AFTER_SECONDS = env.int("REPORT_STALE_AFTER_SECONDS", default=900)
REPORT_MAX_RETRIES = env.int("REPORT_MAX_RETRIES", default=5)
REPORT_RETRY_BASE_SECONDS = env.float("REPORT_RETRY_BASE_SECONDS", default=120.0)
# Claude's summary at the top of the report: only when a key is set; aggregates only.
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
ANTHROPIC_MODEL = env.str("ANTHROPIC_MODEL", default="claude-haiku-4-5")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="")
ANTHROPIC_TIMEOUT_SECONDS = env.float("ANTHROPIC_TIMEOUT_SECONDS", default=20.0)
