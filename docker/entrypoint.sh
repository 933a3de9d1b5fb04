#!/bin/sh
# Role dispatcher of the one image: `docker run IMAGE <role>`. Every role's command lives here and
# only here (compose.yaml names roles), so changing a pool or a flag is one line.
set -e
role=${1:-web}
shift || true
case "$role" in
  # gunicorn's own lines (start, access log) go through the shared log handler (LOG_FORMAT).
  web)             exec gunicorn -c python:webapp.gunicorn_conf webapp.wsgi --bind 0.0.0.0:8000 --workers "${WEB_WORKERS:-3}" "$@" ;;
  # Schema first (as the owner when DATABASE_OWNER_URL is set: the app's login may only INSERT/SELECT
  # audit rows), then (first deployment only) the seeded and trained intent router.
  migrate)         python manage.py migrate --noinput ${DATABASE_OWNER_URL:+--database owner} "$@" && exec python manage.py train_router --if-missing ;;
  listener)        exec python -m ingest "$@" ;;
  worker-pipeline) exec celery -A workers.celery worker -n "pipeline@%h" -Q dtbot.preprocess,dtbot.postprocess,dtbot.deliver,dtbot.reminders -P threads -c "${PIPELINE_CONCURRENCY:-16}" -l INFO "$@" ;;
  worker-skills)   exec celery -A workers.celery worker -n "skills@%h" -Q dtbot.skills -P "${SKILLS_POOL:-prefork}" -c "${SKILLS_CONCURRENCY:-2}" -l INFO "$@" ;;
  # Skills that wait (LLM, remote skills): many threads; CPU-bound skills stay on the prefork pool above.
  worker-skills-io) exec celery -A workers.celery worker -n "skills-io@%h" -Q dtbot.skills.io -P threads -c "${SKILLS_IO_CONCURRENCY:-64}" -l INFO "$@" ;;
  beat)            exec celery -A workers.celery beat -l INFO --schedule "${BEAT_SCHEDULE_FILE:-/app/var/run/celerybeat-schedule}" "$@" ;;
  # Basic auth from FLOWER_BASIC_AUTH (Flower reads it itself); queue lengths from the broker's management API.
  flower)          exec celery -A workers.celery flower --port=5555 ${FLOWER_BROKER_API:+--broker-api="$FLOWER_BROKER_API"} "$@" ;;
  # The compose healthchecks of the workers and beat: their heartbeat file is fresh.
  worker-ready)    exec python -m workers.health "$@" ;;
  manage)          exec python manage.py "$@" ;;
  *)               exec "$role" "$@" ;;
esac
