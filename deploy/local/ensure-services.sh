#!/usr/bin/env bash
# `make test` runs against PostgreSQL and Redis as deployed, never a fallback. This checks both answer,
# starts a stopped one with this machine's own start command where it can, and otherwise says exactly
# what to start and fails.
set -u
PGHOST=${PGHOST:-127.0.0.1}; PGPORT=${PGPORT:-5432}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}; REDIS_PORT=${REDIS_PORT:-6379}

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null || python3 - "$PGHOST" "$PGPORT" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}
redis_up() { python3 - "$REDIS_HOST" "$REDIS_PORT" <<'PY'
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
    s.sendall(b"PING\r\n"); ok = s.recv(16).startswith(b"+PONG"); s.close()
except OSError:
    ok = False
sys.exit(0 if ok else 1)
PY
}
wait_for() { for _ in $(seq 1 30); do "$1" && return 0; sleep 0.5; done; return 1; }

status=0
if ! pg_up; then
  echo "PostgreSQL is not answering on $PGHOST:$PGPORT; trying to start it" >&2
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  wait_for pg_up || { echo "PostgreSQL is still down. Start it: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" >&2; status=1; }
fi
if ! redis_up; then
  echo "Redis is not answering on $REDIS_HOST:$REDIS_PORT; trying to start it" >&2
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  wait_for redis_up || { echo "Redis is still down. Start it: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''" >&2; status=1; }
fi
[ $status -eq 0 ] && echo "PostgreSQL $PGHOST:$PGPORT and Redis $REDIS_HOST:$REDIS_PORT are answering"
exit $status
