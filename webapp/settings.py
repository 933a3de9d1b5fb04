"""Django settings, derived from the typed conf.settings (environment only)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from conf.logs import QUIET_LOGGERS
from conf.settings import get_settings, production_problems

_s = get_settings()

# Production mode (DJANGO_SECURE=1): no start with development secrets (docs/security.md).
SECURE_MODE = _s.django_secure
if SECURE_MODE and (_problems := production_problems(_s)):
    raise ImproperlyConfigured("DJANGO_SECURE=1 refuses to start: " + "; ".join(_problems))

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = _s.django_secret_key
DEBUG = _s.django_debug
ALLOWED_HOSTS = list(_s.django_allowed_hosts)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "webapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: answers a locked-out login with 429.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: a locked-out username+address is refused before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _s.login_failure_limit
AXES_COOLOFF_TIME = dt.timedelta(minutes=_s.login_lockout_minutes)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# The proxy in front of gunicorn sets X-Forwarded-For (only when it is trusted).
AXES_IPWARE_PROXY_COUNT = 1 if _s.django_trust_forwarded_proto else None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if _s.django_trust_forwarded_proto else ["REMOTE_ADDR"])

# TOTP (django-otp) for every admin user: always in production mode.
ADMIN_REQUIRE_OTP = SECURE_MODE or _s.admin_require_otp
OTP_TOTP_ISSUER = "DingTalk assistant"

# Idle admin sessions end: the cookie's age restarts with every request.
SESSION_COOKIE_AGE = _s.admin_session_idle_seconds
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True

# Prometheus sends this bearer token for /metrics (empty: open, development only).
METRICS_TOKEN = _s.metrics_token

if SECURE_MODE:
    SECURE_SSL_REDIRECT = True
    # Probes and scrapes inside the deployment's network speak plain HTTP to the container.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^livez$", r"^metrics$", r"^ops/alerts$"]
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
if _s.django_trust_forwarded_proto:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

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
            ]
        },
    }
]

DATABASES = {"default": dj_database_url.parse(_s.database_url, conn_max_age=60)}
if _s.database_owner_url:
    # The owner runs migrations (`manage.py migrate --database owner`); the application logs in as
    # DATABASE_URL's user, which may only INSERT and SELECT audit rows (webapp/dbroles.py).
    DATABASES["owner"] = {**dj_database_url.parse(_s.database_owner_url), "TEST": {"MIRROR": "default"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "webapp.passwords.ComplexityValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Same handler as every other role (conf/logs.py): text or JSON lines (LOG_FORMAT) carrying the msgId.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"()": "conf.logs.make_handler", "kind": _s.log_format}},
    # django-axes reports every login at INFO; the audit log has them (failures stay WARNING).
    "loggers": {name: {"level": level} for name, level in {**QUIET_LOGGERS, "axes": "WARNING"}.items()},
    "root": {"handlers": ["console"], "level": _s.log_level},
}
