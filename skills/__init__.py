"""Skill plugins and intent routing. Never imports Django or Celery; skills return replies, never send."""
