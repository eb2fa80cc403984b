#!/usr/bin/env bash
# Installs (apt) and starts what the test suite talks to: a throw-away PostgreSQL server on
# loopback, and Debian's chromium for the browser tests. Prints `export ...` lines to eval.
set -euo pipefail
PGPORT="${LABELLOOP_TEST_PGPORT:-55432}"
PGDATA="${TMPDIR:-/tmp}/labelloop-test-pg"

need_apt=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing ${need_apt[*]} with apt" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
  else
    echo "missing ${need_apt[*]}: install them with apt (PostgreSQL and browser tests will skip)" >&2
  fi
fi

BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$BIN" ] && [ -x "$BIN/initdb" ]; then
  RUNAS=()
  if [ "$(id -u)" = 0 ]; then RUNAS=(runuser -u postgres --); fi
  if ! "${RUNAS[@]}" "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    rm -rf "$PGDATA"; mkdir -p "$PGDATA"
    [ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
    "${RUNAS[@]}" "$BIN/initdb" -D "$PGDATA" -U labelloop --auth=trust >/dev/null
    "${RUNAS[@]}" "$BIN/pg_ctl" -D "$PGDATA" -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off" \
      -l "$PGDATA/log" -w start >/dev/null
  fi
  echo "export LABELLOOP_TEST_POSTGRES_URL=postgresql://labelloop@127.0.0.1:$PGPORT/postgres"
fi
