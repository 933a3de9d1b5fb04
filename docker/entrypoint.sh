#!/bin/sh
# Role dispatcher of the one image: `docker run IMAGE <role>`.
set -e
role=${1:-web}
shift || true
case "$role" in
  web)             exec gunicorn webapp.wsgi --bind 0.0.0.0:8000 --workers "${WEB_WORKERS:-3}" --access-logfile - "$@" ;;
  # Schema first (as the owner when DATABASE_OWNER_URL is set: the app's login may only INSERT/SELECT
  # audit rows), then (first deployment only) the seeded and trained intent router.
  migrate)         python manage.py migrate --noinput ${DATABASE_OWNER_URL:+--database owner} "$@" && exec python manage.py train_router --if-missing ;;
  listener)        exec python -m ingest "$@" ;;
  worker-pipeline) exec celery -A workers.celery worker -n "pipeline@%h" -Q dtbot.preprocess,dtbot.postprocess,dtbot.deliver,dtbot.reminders -P threads -c "${PIPELINE_CONCURRENCY:-16}" -l INFO "$@" ;;
  worker-skills)   exec celery -A workers.celery worker -n "skills@%h" -Q dtbot.skills -P prefork -c "${SKILLS_CONCURRENCY:-2}" -l INFO "$@" ;;
  beat)            exec celery -A workers.celery beat -l INFO --schedule "${BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}" "$@" ;;
  flower)          exec celery -A workers.celery flower --port=5555 "$@" ;;
  manage)          exec python manage.py "$@" ;;
  *)               exec "$role" "$@" ;;
esac
