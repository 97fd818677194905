"""TagDesk settings, read from the environment (see README "Configuration")."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

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
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "import_export",
    "django_celery_beat",
    "permissions",
    "customers",
    "tagging",
    "rules",
    "wecom",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "permissions.User"
AUTHENTICATION_BACKENDS = [
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
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "var" / "media")
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20000
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Redis, cache, Celery ---------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL") or ""
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}"
    )

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "tagdesk"),
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
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
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
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
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
TAGDESK_IMPORT_ASYNC_THRESHOLD = env_int("TAGDESK_IMPORT_ASYNC_THRESHOLD", 5000, minimum=1)
TAGDESK_DEFAULT_PHONE_REGION = env_str("TAGDESK_DEFAULT_PHONE_REGION", "CN") or "CN"

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
WECOM_OUTBOX_MAX_ATTEMPTS = env_int("WECOM_OUTBOX_MAX_ATTEMPTS", 8, minimum=1)
WECOM_OUTBOX_RETRY_SECONDS = env_int("WECOM_OUTBOX_RETRY_SECONDS", 10, minimum=0)

# --- Security (production: DEBUG=0) -----------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG and env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = not DEBUG and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO") or "INFO"},
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
    "compact-segment-index": {
        "task": "tagging.compact_segment_index",
        "schedule": crontab(minute="*"),
    },
    "wecom-drain-outbox": {
        "task": "wecom.drain_outbox",
        "schedule": crontab(minute="*"),
    },
}
