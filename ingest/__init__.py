"""DingTalk Stream-mode listener: frames in, durable envelopes out, then ACK. No Django, no skills."""

from __future__ import annotations

import importlib
import sys

# Modules that import Django opportunistically when it is installed (kombu to encode lazy strings,
# celery to unwrap LazySettings). The listener needs neither.
_DJANGO_CURIOUS = ("kombu.utils.json", "celery.utils.collections")


def _load_without_django() -> None:
    """Load kombu's and celery's Django-curious modules with Django hidden, so the listener process
    never loads Django (start-up time, memory, layering). No effect when Django is already loaded
    (a Django process) or those modules are (a worker that imports ingest)."""
    if "django" in sys.modules:
        return
    sys.modules["django"] = None  # type: ignore[assignment]  # `import django...` → ImportError
    try:
        for name in _DJANGO_CURIOUS:
            if name not in sys.modules:
                try:
                    importlib.import_module(name)
                except ImportError:
                    pass  # library missing: the import that needs it will say so
    finally:
        del sys.modules["django"]


_load_without_django()
