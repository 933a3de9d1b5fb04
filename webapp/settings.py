"""Django settings, derived from the typed conf.settings (environment only)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from conf.logs import LOG_FORMAT, QUIET_LOGGERS
from conf.settings import get_settings

_s = get_settings()

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
    "webapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Same format as the workers: every line about a message carries its msgId.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"message_context": {"()": "conf.logs.MessageContextFilter"}},
    "formatters": {"plain": {"format": LOG_FORMAT}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["message_context"],
        }
    },
    "loggers": {name: {"level": level} for name, level in QUIET_LOGGERS.items()},
    "root": {"handlers": ["console"], "level": _s.log_level},
}
