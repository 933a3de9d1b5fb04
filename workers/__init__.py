"""Celery app and the one pipeline: preprocess → run_skill → postprocess → deliver."""
