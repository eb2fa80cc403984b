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

# A real Label Studio for the ML-backend end-to-end test, in a virtual environment of its own (its
# pinned Django stack never meets labelloop's); made once and kept in the user's cache.
LS_VERSION=1.23.2
LS_VENV="${LABELLOOP_TEST_LS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/labelloop-test/label-studio-$LS_VERSION}"
if [ ! -x "$LS_VENV/bin/label-studio" ] || [ ! -f "$LS_VENV/.installed" ]; then
  echo "installing label-studio==$LS_VERSION into $LS_VENV (once)" >&2
  rm -rf "$LS_VENV"
  if python3 -m venv "$LS_VENV" >&2 && "$LS_VENV/bin/pip" install -q --disable-pip-version-check \
      "label-studio==$LS_VERSION" >&2 2>&1; then
    touch "$LS_VENV/.installed"
  else
    echo "could not install label-studio: its end-to-end test will skip" >&2
  fi
fi
if [ -f "$LS_VENV/.installed" ]; then
  echo "export LABELLOOP_TEST_LABEL_STUDIO=$LS_VENV/bin/label-studio"
fi
