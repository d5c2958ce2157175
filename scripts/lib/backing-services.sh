# Finds or starts the PostgreSQL and Redis the tests talk to. Sourced by scripts/test.
#
# Order for each: the URL you configured (DATABASE_URL / REDIS_URL); else a server on
# the standard local port; else a throwaway server in a temp dir (installed from Debian
# packages first if missing) on a random high port, another if that one is taken (see
# random_port), stopped when the script exits.

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

# A random high port to try. Nothing binds it first: the server is started on it, and
# when it cannot bind because the port is taken, another is tried (binding a port,
# releasing it and handing it to a server would race with every other process on a
# shared machine).
random_port() { echo $((20000 + (RANDOM * 32768 + RANDOM) % 40000)); }
PORT_ATTEMPTS=5

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
  start_throwaway_postgres
}

# initdb in a temp dir, then the server on a random port, another if that one is taken.
start_throwaway_postgres() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
  local bin dir port attempt run=()
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  dir=$(mktemp -d /tmp/liner-pg.XXXXXX)
  if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; run=(runuser -u postgres --); fi
  "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
  for ((attempt = 1; ; attempt++)); do
    port=$(random_port)
    rm -f "$dir/log"
    if "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" >/dev/null 2>&1; then
      break
    fi
    if ((attempt < PORT_ATTEMPTS)) && grep -q 'already in use' "$dir/log" 2>/dev/null; then
      log "PostgreSQL: port $port is taken; trying another"
      continue
    fi
    log "PostgreSQL: the throwaway server did not start (port $port):"
    tail -n 20 "$dir/log" >&2 2>/dev/null || true
    rm -rf "$dir"
    return 1
  done
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
  start_throwaway_redis
}

# A Redis in a temp dir on a random port, another if that one is taken: its own log
# says which (it listens, or it could not bind and exits).
start_throwaway_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  local dir port attempt state
  dir=$(mktemp -d /tmp/liner-redis.XXXXXX)
  for ((attempt = 1; ; attempt++)); do
    port=$(random_port)
    rm -f "$dir/log" "$dir/redis.pid"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
      --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/log" >/dev/null
    state=starting
    for _ in $(seq 100); do
      if grep -q 'Ready to accept connections' "$dir/log" 2>/dev/null; then state=up; break; fi
      if grep -q 'already in use' "$dir/log" 2>/dev/null; then state=taken; break; fi
      sleep 0.1
    done
    [[ $state == up ]] && break
    if [[ $state == taken ]] && ((attempt < PORT_ATTEMPTS)); then
      log "Redis: port $port is taken; trying another"
      continue
    fi
    log "Redis: the throwaway server did not start (port $port):"
    tail -n 20 "$dir/log" >&2 2>/dev/null || true
    [[ -s $dir/redis.pid ]] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    rm -rf "$dir"
    return 1
  done
  LINER_CLEANUP+=("kill \$(cat $dir/redis.pid) 2>/dev/null; rm -rf $dir")
  export LINER_TEST_REDIS_URL="redis://127.0.0.1:$port"
  log "Redis: started a throwaway server on port $port"
}
