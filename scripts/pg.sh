#!/usr/bin/env bash
# A throwaway PostgreSQL server (Debian's package) for tests and benchmarks.
#   scripts/pg.sh start DIR [PORT]   initdb in DIR (once), start on 127.0.0.1:PORT (default: the
#                                    first free port from 25432), print the admin URL
#                                    (postgres://evoucher@127.0.0.1:PORT/postgres)
#   scripts/pg.sh stop DIR           stop it (fast shutdown)
# Installs the `postgresql` package when missing. As root (CI), the server runs as the
# `postgres` user, since PostgreSQL refuses to run as root. Trust auth on loopback only.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?DIR}; port=${3:-}

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_pg() {
  # From a directory the postgres user can enter (not the checkout under /root).
  if [ "$(id -u)" = 0 ]; then (cd / && su postgres -s /bin/sh -c "$*"); else sh -c "$*"; fi
}

case "$cmd" in
  start)
    if [ -z "$(pgbin)" ]; then
      echo "installing postgresql (apt-get)" >&2
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    fi
    bin=$(pgbin)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "'$bin/initdb' -D '$dir/data' -A trust -U evoucher --no-locale -E UTF8" >/dev/null
    fi
    if [ -f "$dir/port" ] && as_pg "'$bin/pg_ctl' -D '$dir/data' status" >/dev/null 2>&1; then
      port=$(cat "$dir/port")
    else
      # Without a port: the first free one from 25432, below Linux's ephemeral range (32768+),
      # where an outgoing connection's local port can hold a port that a connect() probe sees
      # as free; a start that still finds its port taken tries the next one.
      tries=1; fixed=$port
      if [ -z "$port" ]; then port=25432; tries=40; fi
      started=0
      while [ "$tries" -gt 0 ]; do
        if [ -z "$fixed" ]; then
          while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
        fi
        : > "$dir/log"
        [ "$(id -u)" = 0 ] && chown postgres "$dir/log"
        if as_pg "'$bin/pg_ctl' -D '$dir/data' -l '$dir/log' -w -o \"-k '$dir' -p $port -c listen_addresses=127.0.0.1 -c max_connections=200\" start" >/dev/null; then
          started=1; break
        fi
        grep -q "Address already in use" "$dir/log" || break
        port=$((port + 1)); tries=$((tries - 1))
      done
      if [ "$started" != 1 ]; then
        tail -20 "$dir/log" >&2
        exit 1
      fi
      echo "$port" > "$dir/port"
    fi
    echo "postgres://evoucher@127.0.0.1:$port/postgres"
    ;;
  stop)
    bin=$(pgbin)
    [ -n "$bin" ] && as_pg "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 || true
    ;;
  *) echo "usage: scripts/pg.sh start|stop DIR [PORT]" >&2; exit 2 ;;
esac
