"""TagDesk settings, read from the environment (see README "Configuration")."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import csp.constants as csp
import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "import_export",
    "django_celery_beat",
    "axes",
    "csp",
    "permissions",
    "customers",
    "tagging",
    "rules",
    "wecom",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files with DEBUG=0 too (hashed names, compressed, cached for a year).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a login refused for a lockout into api.lockout's answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "django.template.context_processors.i18n",
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'tagdesk.sqlite3'}"
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
except Exception as exc:  # dj-database-url raises several types for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if _db["ENGINE"] == "django.db.backends.sqlite3":
    Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _db.setdefault("OPTIONS", {}).update({"timeout": 20})
    _db["CONN_MAX_AGE"] = 0
if _db["ENGINE"] == "django.db.backends.postgresql" and env_str("DB_PREPARE_THRESHOLD"):
    # Server-side prepared statements: a query a connection has run this many times is planned
    # once and reused (planning was ~80% of the API's SQL time). psycopg 3 prepares only with
    # server-side parameter binding. Off by default: a pooler in transaction mode (PgBouncer
    # before 1.21, or without max_prepared_statements) cannot keep prepared statements.
    _db.setdefault("OPTIONS", {}).update(
        {
            "server_side_binding": True,
            "prepare_threshold": env_int("DB_PREPARE_THRESHOLD", 5),
        }
    )
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "permissions.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out account + address
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# Login lockout (django-axes) for the admin and the API token login alike: after
# LOGIN_FAILURE_LIMIT wrong passwords for one account from one address, that pair is refused
# (429, even with the right password) for LOGIN_COOLOFF_MINUTES. Attempts and failures are
# kept in axes' tables (admin: "Axes"); `manage.py axes_reset_username NAME` unlocks early.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "api.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_VERBOSE = False  # the tables are the record; no log line per attempt or command start

# guardian: no anonymous user row; permissions come only from explicit grants.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai") or "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
# collectstatic writes hashed, compressed copies; whitenoise serves them. Without DEBUG a missing
# file in a template is an error at render time, so a production start is never unstyled.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_MANIFEST_STRICT = False  # a file missing from the manifest is served unhashed, not a 500
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "var" / "media")
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20000
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Background jobs: leases, reaper -------------------------------------------------------
# A worker renews its job's lease with every import batch (a rule run: every third of the lease,
# from a heartbeat thread). A job still unfinished after its lease lost its worker: the reaper
# (beat, every minute) queues it again, at most TAGDESK_JOB_MAX_ATTEMPTS times, then fails it.
TAGDESK_JOB_LEASE_SECONDS = env_int("TAGDESK_JOB_LEASE_SECONDS", 600, minimum=1)
TAGDESK_JOB_MAX_ATTEMPTS = env_int("TAGDESK_JOB_MAX_ATTEMPTS", 5, minimum=1)

# --- Redis, cache, Celery ---------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL") or ""
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}"
    )

if REDIS_URL:
    CACHES = {
        "default": {
            # Degrades to "no cache" (logged) while Redis is down: config/cache.py.
            "BACKEND": "config.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "tagdesk"),
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL  # no broker: run tasks inline (demo)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged (acks_late) message after the visibility timeout. It only
# has to outlast one lease (the longest batch or rule run): a job is healed by the reaper, and a
# message delivered again while its job still holds a live lease is a no-op.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int(
        "CELERY_VISIBILITY_TIMEOUT", 2 * TAGDESK_JOB_LEASE_SECONDS, minimum=1
    )
}
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.tokens.DeviceTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "api.schema.TagDeskAutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.UserThrottle", "api.throttling.AnonThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_USER", "1200/min"),
        "anon": env_str("API_THROTTLE_ANON", "60/min"),
        "batch": env_str("API_THROTTLE_BATCH", "120/min"),
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.SafeJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNICODE_JSON": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "TagDesk API",
    "DESCRIPTION": "Customer tagging for mobile clients and integrations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TagKindEnum": "tagging.models.TagKind",
        "TagStatusEnum": "tagging.models.TagStatus",
        "EventKindEnum": "customers.models.EventKind",
        "ImportStatusEnum": "customers.models.ImportJob.Status",
    },
}

# --- import-export ------------------------------------------------------------------------------
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = True

# --- TagDesk limits (WeCom-like defaults) -------------------------------------------------------
TAGDESK_TAG_NAME_MAX_LENGTH = env_int("TAGDESK_TAG_NAME_MAX_LENGTH", 30, minimum=1)
TAGDESK_MAX_TAGS = env_int("TAGDESK_MAX_TAGS", 3000, minimum=1)
TAGDESK_MAX_GROUPS = env_int("TAGDESK_MAX_GROUPS", 100, minimum=1)
TAGDESK_MAX_TAGS_PER_GROUP = env_int("TAGDESK_MAX_TAGS_PER_GROUP", 100, minimum=1)
TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER = env_int(
    "TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER", 50, minimum=1
)
TAGDESK_MAX_BATCH_CUSTOMERS = env_int("TAGDESK_MAX_BATCH_CUSTOMERS", 500, minimum=1)
# Longest expiry a temporary tag (参加过38促销) may be given, in days from now.
TAGDESK_MAX_TAG_EXPIRY_DAYS = env_int("TAGDESK_MAX_TAG_EXPIRY_DAYS", 366, minimum=1)
# Personal tags nobody has given a customer for this many days are listed for their owner.
TAGDESK_PERSONAL_TAG_STALE_DAYS = env_int("TAGDESK_PERSONAL_TAG_STALE_DAYS", 30, minimum=1)
# Accuracy checks (抽检): default share of the population sampled, and the largest sample.
TAGDESK_ACCURACY_SAMPLE_PERCENT = env_int("TAGDESK_ACCURACY_SAMPLE_PERCENT", 5, minimum=1)
TAGDESK_ACCURACY_SAMPLE_MAX = env_int("TAGDESK_ACCURACY_SAMPLE_MAX", 500, minimum=1)
# Tag combination suggestions (docs/suggestions.md): a combination needs this many customers
# holding all its tags and this lift; only the most popular tags are paired, and only so many
# triples are counted (bounds the nightly computation).
TAGDESK_SUGGESTION_MIN_SUPPORT = env_int("TAGDESK_SUGGESTION_MIN_SUPPORT", 50, minimum=1)
TAGDESK_SUGGESTION_MIN_LIFT = env_float("TAGDESK_SUGGESTION_MIN_LIFT", 1.5, minimum=1.0)
TAGDESK_SUGGESTION_TOP_TAGS = env_int("TAGDESK_SUGGESTION_TOP_TAGS", 300, minimum=2)
TAGDESK_SUGGESTION_MAX_TRIPLES = env_int("TAGDESK_SUGGESTION_MAX_TRIPLES", 20000, minimum=0)
TAGDESK_IMPORT_ASYNC_THRESHOLD = env_int("TAGDESK_IMPORT_ASYNC_THRESHOLD", 5000, minimum=1)
# Only files expanding to at most this many KB are counted (and run) in the upload request; all
# others go to a worker at once, which counts and validates them (customers/import_readers.py).
TAGDESK_IMPORT_INLINE_MAX_KB = env_int("TAGDESK_IMPORT_INLINE_MAX_KB", 1024, minimum=1)
# Caps of one import file: data rows, expanded XLSX size, reading time.
TAGDESK_IMPORT_MAX_ROWS = env_int("TAGDESK_IMPORT_MAX_ROWS", 1_000_000, minimum=1)
TAGDESK_IMPORT_MAX_SHEET_MB = env_int("TAGDESK_IMPORT_MAX_SHEET_MB", 512, minimum=1)
TAGDESK_IMPORT_MAX_SECONDS = env_int("TAGDESK_IMPORT_MAX_SECONDS", 300, minimum=1)
# Real-time auto tags: milliseconds a worker waits after the first change before evaluating, so
# a burst of changes for one customer is evaluated once (rules.realtime).
TAGDESK_REALTIME_DEBOUNCE = env_int("TAGDESK_REALTIME_DEBOUNCE_MS", 200) / 1000
TAGDESK_DEFAULT_PHONE_REGION = env_str("TAGDESK_DEFAULT_PHONE_REGION", "CN") or "CN"
TAGDESK_TOKEN_TTL_DAYS = env_int("TAGDESK_TOKEN_TTL_DAYS", 30, minimum=1)
TAGDESK_MAX_TOKENS_PER_USER = env_int("TAGDESK_MAX_TOKENS_PER_USER", 20, minimum=1)
TAGDESK_IMPORT_BATCH_ROWS = env_int("TAGDESK_IMPORT_BATCH_ROWS", 5000, minimum=1)


# --- WeCom (企业微信) integration: unset WECOM_CORP_ID / WECOM_SECRET = integration off -----------
WECOM_CORP_ID = env_str("WECOM_CORP_ID") or ""
WECOM_SECRET = env_str("WECOM_SECRET") or ""  # the 客户联系 secret
WECOM_AGENT_ID = env_str("WECOM_AGENT_ID") or ""
WECOM_CALLBACK_TOKEN = env_str("WECOM_CALLBACK_TOKEN") or ""
WECOM_CALLBACK_AES_KEY = env_str("WECOM_CALLBACK_AES_KEY") or ""
WECOM_API_BASE = (env_str("WECOM_API_BASE") or "https://qyapi.weixin.qq.com").rstrip("/")
if not WECOM_API_BASE.startswith(("https://", "http://")):
    raise ImproperlyConfigured(f"WECOM_API_BASE must be an http(s) URL, got {WECOM_API_BASE!r}")
if bool(WECOM_CORP_ID) != bool(WECOM_SECRET):
    raise ImproperlyConfigured("Set both WECOM_CORP_ID and WECOM_SECRET, or neither")
if WECOM_CALLBACK_AES_KEY and len(WECOM_CALLBACK_AES_KEY) != 43:
    raise ImproperlyConfigured("WECOM_CALLBACK_AES_KEY must be the 43-character EncodingAESKey")
WECOM_HTTP_TIMEOUT = env_int("WECOM_HTTP_TIMEOUT", 10, minimum=1)
# mark_tag calls per second for the whole corp, shared by all workers (WeCom allows far more).
WECOM_OUTBOX_RATE = env_int("WECOM_OUTBOX_RATE", 20, minimum=1)
# mark_tag calls in flight at once per drain (each sender its own connection and transaction).
WECOM_OUTBOX_CONCURRENCY = env_int("WECOM_OUTBOX_CONCURRENCY", 4, minimum=1)
WECOM_OUTBOX_MAX_ATTEMPTS = env_int("WECOM_OUTBOX_MAX_ATTEMPTS", 8, minimum=1)
WECOM_OUTBOX_RETRY_SECONDS = env_int("WECOM_OUTBOX_RETRY_SECONDS", 10, minimum=0)
# The contact sync's externalcontact/get calls: in flight at once, and per second for the corp
# (shared by all workers). WeCom allows 10,000 calls a minute per API and corp (about 166/s) and
# 150,000 an hour; callbacks read contacts through the same API, so the sync keeps well under.
WECOM_SYNC_CONCURRENCY = env_int("WECOM_SYNC_CONCURRENCY", 4, minimum=1)
WECOM_SYNC_RATE = env_int("WECOM_SYNC_RATE", 100, minimum=1)
# The WeCom 规则组 (rule group) that receives auto tag groups as strategy tags; unset = auto
# groups are never pushed. Its id is shown in the WeCom admin (客户联系 → 规则组).
_strategy = env_str("WECOM_STRATEGY_ID") or ""
if _strategy and not (_strategy.isdigit() and int(_strategy) > 0):
    raise ImproperlyConfigured(
        f"WECOM_STRATEGY_ID must be a positive whole number (a 规则组 id), got {_strategy!r}"
    )
WECOM_STRATEGY_ID: int | None = int(_strategy) if _strategy else None

# --- Outbound CRM webhook (docs/wecom.md#crm-webhook--crm-webhook) ---------------------------
# Endpoints are configured in the admin.
# Off: the assignment hook makes no query at all (it runs on every tag change).
CRM_WEBHOOK_ENABLED = env_bool("CRM_WEBHOOK_ENABLED", False)
CRM_WEBHOOK_TIMEOUT = env_float("CRM_WEBHOOK_TIMEOUT", 10.0, minimum=0.1)
CRM_WEBHOOK_MAX_ATTEMPTS = env_int("CRM_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
CRM_WEBHOOK_RETRY_SECONDS = env_int("CRM_WEBHOOK_RETRY_SECONDS", 10, minimum=0)
# Off: endpoints on loopback, private, link-local or reserved addresses are refused (a tag admin
# could otherwise make TagDesk POST to the cloud metadata service or an intranet admin port).
# Turn on for a CRM inside the company network.
CRM_WEBHOOK_ALLOW_PRIVATE = env_bool("CRM_WEBHOOK_ALLOW_PRIVATE", False)

# --- Security (production: DEBUG=0) -----------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG and env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = not DEBUG and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
# Only behind a proxy that sets the header (and strips it from clients): SECURE_PROXY_SSL_HEADER
# names it, e.g. HTTP_X_FORWARDED_PROTO; a request carrying it with "https" counts as secure.
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER") or ""
if _proxy_ssl_header and not _proxy_ssl_header.startswith("HTTP_"):
    raise ImproperlyConfigured(
        f"SECURE_PROXY_SSL_HEADER must name a request header as Django sees it, e.g."
        f" HTTP_X_FORWARDED_PROTO; got {_proxy_ssl_header!r}"
    )
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https") if _proxy_ssl_header else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp 4) on every page: scripts only from this site or inline
# with the request's nonce (the admin's templates, the sidecar Swagger/Redoc pages carry it);
# inline style attributes stay allowed (tag colour chips). Redoc adds 'unsafe-eval' on its page
# only (api/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF, "data:"],
        "connect-src": [csp.SELF],
        "worker-src": [csp.SELF, "blob:"],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO") or "INFO"},
    # django-axes logs every reset at INFO; its tables are the record (admin: "Axes").
    "loggers": {"axes": {"level": "WARNING"}},
}

# Static beat entries; django-celery-beat copies them into its tables, where the admin edits them.
from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE = {
    "remove-expired-assignments": {
        "task": "tagging.remove_expired_assignments",
        "schedule": crontab(hour=0, minute=30),
    },
    "tag-hygiene-monthly-report": {
        "task": "tagging.hygiene_monthly_report",
        "schedule": crontab(day_of_month=1, hour=6, minute=0),
    },
    "personal-tag-review-monthly": {
        "task": "tagging.list_stale_personal_tags",
        "schedule": crontab(day_of_month=1, hour=6, minute=30),
    },
    "realtime-rules-sweep": {
        # Safety net: evaluates dirty customers whose wake-up was lost (broker down at commit).
        "task": "rules.realtime_batch",
        "schedule": crontab(minute="*"),
    },
    "compact-segment-index": {
        "task": "tagging.compact_segment_index",
        "schedule": crontab(minute="*"),
    },
    "reap-import-jobs": {"task": "customers.reap_import_jobs", "schedule": crontab(minute="*")},
    "reap-rule-runs": {"task": "rules.reap_rule_runs", "schedule": crontab(minute="*")},
    "wecom-drain-outbox": {
        "task": "wecom.drain_outbox",
        "schedule": crontab(minute="*"),
    },
    "wecom-drain-webhooks": {
        "task": "wecom.drain_webhooks",
        "schedule": crontab(minute="*"),
    },
}
