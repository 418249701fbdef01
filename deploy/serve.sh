#!/usr/bin/env bash
# A production-like local run (`make serve`): debug off, static files collected and served by
# WhiteNoise, CHATSITE_WORKERS daphne workers under supervisor, each on a listening socket of its
# own on the one port (SO_REUSEPORT: deploy/reuseport.py), all on one Redis (channel layer and
# presence) and one database.
#
#   CHATSITE_WORKERS=4 CHATSITE_PORT=8000 DATABASE_URL=postgres://… REDIS_URL=redis://… make serve
#
# Defaults: 2 workers on 127.0.0.1:8000, Redis at 127.0.0.1:6379/0, the SQLite file of the
# project (PostgreSQL is what production should use). A secret key is generated once into
# .secret-key unless DJANGO_SECRET_KEY is set.
set -euo pipefail
cd "$(dirname "$0")/.."

export CHATSITE_DIR=$PWD
export CHATSITE_HOST=${CHATSITE_HOST:-127.0.0.1}
export CHATSITE_PORT=${CHATSITE_PORT:-8000}
export CHATSITE_WORKERS=${CHATSITE_WORKERS:-2}
export CHATSITE_RUN_DIR=${CHATSITE_RUN_DIR:-$PWD/run}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export DJANGO_DEBUG=0
# Plain http on this machine: no redirect to https, no Secure-only cookies, no HSTS. Behind a
# TLS-terminating proxy, run it with DJANGO_HTTPS=1.
export DJANGO_HTTPS=${DJANGO_HTTPS:-0}
export DJANGO_ALLOWED_HOSTS=${DJANGO_ALLOWED_HOSTS:-$CHATSITE_HOST,localhost,127.0.0.1}
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  [ -s .secret-key ] || .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))" > .secret-key
  DJANGO_SECRET_KEY=$(cat .secret-key)
  export DJANGO_SECRET_KEY
fi

mkdir -p "$CHATSITE_RUN_DIR"
# The workers' SO_REUSEPORT sockets would join a port already served (by an earlier `make serve`
# still running, say) and share its connections; refuse instead, as one shared socket did.
.venv/bin/python deploy/reuseport.py "$CHATSITE_HOST:$CHATSITE_PORT" --check
.venv/bin/python manage.py check --deploy --fail-level ERROR
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput --verbosity 0
echo "Serving http://$CHATSITE_HOST:$CHATSITE_PORT/ with $CHATSITE_WORKERS daphne workers (logs: $CHATSITE_RUN_DIR)"
exec .venv/bin/supervisord -c deploy/supervisord.conf
