# Finds or starts the PostgreSQL and Redis the tests talk to. Sourced by scripts/test.
#
# Order for each: the URL you configured (DATABASE_URL / REDIS_URL); else a server on
# the standard local port; else a throwaway server on a free port in a temp dir
# (installed from Debian packages first if missing), stopped when the script exits.

LINER_CLEANUP=()
liner_cleanup() {
  local i
  for ((i = ${#LINER_CLEANUP[@]} - 1; i >= 0; i--)); do eval "${LINER_CLEANUP[i]}" || true; done
}
trap liner_cleanup EXIT

log() { echo "[scripts/test] $*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || { log "no apt-get: install $* by hand"; return 1; }
  if [[ $APT_UPDATED -eq 0 ]]; then as_root apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  log "installing $* from Debian packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 30000))
}

pg_answers() { command -v psql >/dev/null && psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  if [[ ${DATABASE_URL:-} == postgres* ]]; then
    export LINER_TEST_PG_URL=$DATABASE_URL
    log "PostgreSQL: using DATABASE_URL"
    return
  fi
  command -v psql >/dev/null || apt_install postgresql-client || true
  local local_url="postgres://postgres@127.0.0.1:5432/postgres"
  if pg_answers "$local_url"; then
    export LINER_TEST_PG_URL=$local_url
    log "PostgreSQL: using the server on 127.0.0.1:5432"
    return
  fi
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
  local bin dir port run=()
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  dir=$(mktemp -d /tmp/liner-pg.XXXXXX)
  port=$(free_port)
  if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; run=(runuser -u postgres --); fi
  "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
  "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" >/dev/null
  LINER_CLEANUP+=("${run[*]} $bin/pg_ctl -D $dir/data -m immediate stop >/dev/null 2>&1; rm -rf $dir")
  export LINER_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  log "PostgreSQL: started a throwaway server on port $port"
}

# Databases left by earlier runs (each test creates liner_test_<random>).
sweep_test_databases() {
  command -v psql >/dev/null || return 0
  local db
  for db in $(psql "$LINER_TEST_PG_URL" -Atqc "select datname from pg_database where datname like 'liner_test_%'" 2>/dev/null); do
    psql "$LINER_TEST_PG_URL" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  done
}

ensure_redis() {
  if [[ -n ${REDIS_URL:-} ]]; then
    export LINER_TEST_REDIS_URL=$REDIS_URL
    log "Redis: using REDIS_URL"
    return
  fi
  if command -v redis-cli >/dev/null && [[ $(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null) == PONG ]]; then
    export LINER_TEST_REDIS_URL="redis://127.0.0.1:6379"
    log "Redis: using the server on 127.0.0.1:6379"
    return
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  local dir port
  dir=$(mktemp -d /tmp/liner-redis.XXXXXX)
  port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/log" >/dev/null
  for _ in $(seq 50); do [[ -s $dir/redis.pid ]] && break; sleep 0.1; done
  LINER_CLEANUP+=("kill \$(cat $dir/redis.pid) 2>/dev/null; rm -rf $dir")
  export LINER_TEST_REDIS_URL="redis://127.0.0.1:$port"
  log "Redis: started a throwaway server on port $port"
}
