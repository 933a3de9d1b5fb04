"""gunicorn's settings for the web role (`gunicorn -c python:webapp.gunicorn_conf`): its own lines
(start, workers, access log) through the handler every role shares, so LOG_FORMAT=json covers them."""

from __future__ import annotations

from typing import Any

from conf.settings import get_settings

_HANDLER = {"()": "conf.logs.make_handler", "kind": get_settings().log_format}

# gunicorn merges this over its defaults key by key, so every key it names is given whole here.
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        name: {"level": "INFO", "handlers": ["console"], "propagate": False, "qualname": name}
        for name in ("gunicorn.error", "gunicorn.access")
    },
    "handlers": {"console": _HANDLER},
    "formatters": {},
}
