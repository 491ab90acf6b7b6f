#!/usr/bin/env bash
# A private PostgreSQL for the test suite, idempotently: installs the server with apt when it
# is missing, creates a cluster in $BRIDGE_PG_DIR (default /var/tmp/voice-bridge-pg) listening
# on 127.0.0.1:$BRIDGE_PG_PORT (default 54329), starts it unless it runs already, and creates
# the role and database `bridge_test`. Prints the connection URL on stdout (nothing else);
# progress goes to stderr. The system's own cluster, if any, is left alone.
# Usage: BRIDGE_TEST_POSTGRES_URL=$(scripts/postgres.sh)
set -euo pipefail

DATA_DIR=${BRIDGE_PG_DIR:-/var/tmp/voice-bridge-pg}
PORT=${BRIDGE_PG_PORT:-54329}
ROLE=bridge_test
PASSWORD=bridge_test
DB=bridge_test
URL="postgresql://${ROLE}:${PASSWORD}@127.0.0.1:${PORT}/${DB}"

say() { echo "postgres: $*" >&2; }

find_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

BIN=$(find_bin || true)
if [ -z "$BIN" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing postgresql with apt"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    postgresql >&2
  BIN=$(find_bin) || { say "no initdb after installing postgresql"; exit 1; }
fi

# The server refuses to run as root: run it as the package's `postgres` user then (from /,
# since that user may not be allowed into our working directory). The cluster trusts every
# local connection: it is a throwaway test server on loopback, not a place for real data.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$DATA_DIR"
  chown postgres: "$DATA_DIR"
  chmod 700 "$DATA_DIR"
else
  mkdir -p -m 700 "$DATA_DIR"
fi

if [ ! -s "$DATA_DIR/PG_VERSION" ]; then
  say "creating a cluster in $DATA_DIR"
  as_owner "$BIN/initdb" -D "$DATA_DIR" -U postgres --auth=trust -E UTF8 >/dev/null
fi

if ! as_owner "$BIN/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1; then
  say "starting on 127.0.0.1:$PORT"
  as_owner "$BIN/pg_ctl" -D "$DATA_DIR" -l "$DATA_DIR/server.log" -w -t 30 \
    -o "-p $PORT -k $DATA_DIR -c listen_addresses=127.0.0.1" start >/dev/null
fi

psql_admin() {
  as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
  psql_admin -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
  psql_admin -c "CREATE DATABASE $DB OWNER $ROLE" >&2
fi
say "ready: $URL"
echo "$URL"
